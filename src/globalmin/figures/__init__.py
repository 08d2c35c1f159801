"""Stage `figures`: one module per figure (or group of figures), each with `run(cfg, inputs, outputs)` drawing
from the tables the pipeline wrote, with the shared style of `style.py`."""
