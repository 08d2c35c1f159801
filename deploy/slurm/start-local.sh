#!/usr/bin/env bash
# A real one-node SLURM cluster on 127.0.0.1, for running profiles/slurm and its test on one machine.
#
#   deploy/slurm/start-local.sh [--state-dir DIR] [COMMAND [ARG...]]
#
# Installs Debian's slurm-wlm and munge when they are missing (needs root and apt-get), writes slurm.conf
# (from deploy/slurm/slurm.conf) into a private state folder, starts munged, slurmctld and slurmd in the
# foreground as children of this script, and waits until `sinfo` shows the node idle. Then it runs COMMAND
# with SLURM_CONF (for sbatch, squeue, ...) and GLOBALMIN_SLURM_PARTITION exported and exits with its status;
# without COMMAND it prints those two variables and waits until interrupted. On exit it cancels the jobs
# left in the queue and stops the three daemons by the PIDs it started them with, and nothing else.
#
# Job status: this cluster has no accounting database (no slurmdbd, no MariaDB). The executor plugin is
# told to poll `squeue` instead of `sacct` (its documented setting --slurm-status-command squeue, which
# the pinned version 2.8.0 has), and MinJobAge=3600 keeps every finished job visible to squeue for an hour.
# That needs two daemons fewer than accounting would, and installs in seconds.
#
# Environment: GLOBALMIN_SLURM_PORT (slurmctld's port, default 16817; slurmd uses the next one, srun the
# ten after that), GLOBALMIN_SLURM_PARTITION (default "local").
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
state=${TMPDIR:-/tmp}/globalmin-slurm
if [ "${1:-}" = "--state-dir" ]; then
  state=$2
  shift 2
fi
port=${GLOBALMIN_SLURM_PORT:-16817}
partition=${GLOBALMIN_SLURM_PARTITION:-local}

die() { echo "start-local.sh: $*" >&2; exit 1; }

# --- install -------------------------------------------------------------------------------------------------
missing=()
for tool in munged:munge slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
    || die "SLURM is not installed (missing ${missing[*]}) and installing it needs root and apt-get"
  # Keep the packages' own init scripts from starting system-wide daemons during the install: everything
  # this script runs is private to its state folder and stopped again on exit.
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    guard=/usr/sbin/policy-rc.d
  fi
  echo "start-local.sh: installing slurm-wlm and munge from Debian" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurm-wlm munge) >"${TMPDIR:-/tmp}/globalmin-slurm-apt.log" 2>&1 \
    || { [ -z "$guard" ] || rm -f "$guard"; die "apt-get install slurm-wlm munge failed; see ${TMPDIR:-/tmp}/globalmin-slurm-apt.log"; }
  [ -z "$guard" ] || rm -f "$guard"
fi
[ "$(id -u)" = 0 ] || die "slurmd must run as root to start jobs (run this script as root)"

for p in "$port" $((port + 1)); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    die "port $p on 127.0.0.1 is in use (another SLURM?); set GLOBALMIN_SLURM_PORT to a free port"
  fi
done

# --- configure -----------------------------------------------------------------------------------------------
# A fresh state every start; an existing folder is only emptied when it is one this script wrote.
if [ -e "$state" ] && [ -n "$(ls -A "$state")" ] && [ ! -e "$state/slurm.conf" ]; then
  die "state folder $state exists and was not written by this script; choose another with --state-dir"
fi
rm -rf "$state"
mkdir -p "$state"/{munge,ctld,spool,run,log}
chmod 700 "$state" "$state/munge"
host=$(hostname -s)
# slurmctld binds to the address its host name resolves to (NoCtldInAddrAny in slurm.conf): only go on when
# that is a loopback address, so that nothing listens beyond this machine.
host_addrs=$(getent ahostsv4 "$host" | awk '{print $1}' | sort -u | tr '\n' ' ')
case "$host_addrs" in
  127.*) [ -z "$(echo "$host_addrs" | tr ' ' '\n' | grep -v -e '^127\.' -e '^$')" ] \
           || die "host name $host resolves to $host_addrs, not only to loopback; map it to 127.0.0.1 in /etc/hosts" ;;
  *) die "host name $host resolves to '${host_addrs% }', not to loopback; map it to 127.0.0.1 in /etc/hosts" ;;
esac
# The node is as large as slurmd measures this machine (CPUs, sockets, cores, threads, memory).
node_size=$(slurmd -C | head -1 | sed 's/^NodeName=[^ ]* //; s/ *$//')
gpus=0
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  gpus=$(nvidia-smi -L | grep -c '^GPU ')
  echo "NodeName=localnode Name=gpu File=/dev/nvidia[0-$((gpus - 1))]" >"$state/gres.conf"
else
  # No GPU here: declare as many placeholder GPUs as CPUs, so that the profile's GPU requests are scheduled
  # as on a GPU node while the jobs themselves run on the CPU. SLURM drops a GPU without a device file, so
  # each placeholder is a private copy of /dev/null (character device 1,3).
  gpus=$(nproc)
  mkdir -p "$state/dev"
  for ((i = 0; i < gpus; i++)); do mknod "$state/dev/gpu$i" c 1 3; done
  echo "NodeName=localnode Name=gpu File=$state/dev/gpu[0-$((gpus - 1))]" >"$state/gres.conf"
fi
sed -e "s|@HOST@|$host|g" -e "s|@CTLD_PORT@|$port|g" -e "s|@SLURMD_PORT@|$((port + 1))|g" \
    -e "s|@SRUN_PORTS@|$((port + 2))-$((port + 11))|g" -e "s|@STATE@|$state|g" \
    -e "s|@NODE_SIZE@|$node_size|g" -e "s|@GPUS@|$gpus|g" -e "s|@PARTITION@|$partition|g" \
    "$here/slurm.conf" >"$state/slurm.conf"
export SLURM_CONF=$state/slurm.conf
# Commands run inside a job find the configuration where a cluster node keeps it, /etc/slurm/slurm.conf: the
# executor plugin's job step drops SLURM_* variables such as SLURM_CONF before it calls srun. A link to the
# state folder's file goes there, unless another SLURM's configuration is already installed.
etc_conf=/etc/slurm/slurm.conf
if [ -L "$etc_conf" ] && [[ "$(readlink "$etc_conf")" == */globalmin-slurm*/slurm.conf ]]; then
  rm -f "$etc_conf"  # left by an earlier run of this script that was killed before it could clean up
fi
[ ! -e "$etc_conf" ] || die "$etc_conf exists (another SLURM is configured on this machine); not touching it"
mkdir -p /etc/slurm
ln -s "$SLURM_CONF" "$etc_conf"
dd if=/dev/urandom of="$state/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$state/munge/munge.key"

# --- start ---------------------------------------------------------------------------------------------------
pids=()
stop() {
  trap - EXIT INT TERM
  set +e
  if [ ${#pids[@]} -gt 2 ]; then  # the controller is up: cancel what is left, let the node end its jobs
    jobs_left=$(squeue -h -o %i 2>/dev/null)
    if [ -n "$jobs_left" ]; then
      # shellcheck disable=SC2086
      scancel $jobs_left 2>/dev/null
      for _ in $(seq 30); do
        [ -z "$(squeue -h -t RUNNING,COMPLETING -o %i 2>/dev/null)" ] && break
        sleep 1
      done
    fi
  fi
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do  # slurmd, slurmctld, munged: the reverse of their start
    kill -TERM "${pids[$i]}" 2>/dev/null
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "start-local.sh: PID $pid did not stop on SIGTERM; killing it" >&2
      kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
  done
  [ "$(readlink "$etc_conf" 2>/dev/null)" != "$SLURM_CONF" ] || rm -f "$etc_conf"
  echo "start-local.sh: stopped munged, slurmctld and slurmd (PIDs ${pids[*]})" >&2
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

started() {  # NAME PID LOG: fail with the daemon's log if it exits at once
  sleep 1
  kill -0 "$2" 2>/dev/null || { tail -n 20 "$3" >&2; die "$1 exited at start; its log: $3"; }
}
munged -F --force --socket="$state/munge/munge.socket" --key-file="$state/munge/munge.key" \
  --pid-file="$state/run/munged.pid" --log-file="$state/log/munged.log" --seed-file="$state/munge/seed" >>"$state/log/munged.out" 2>&1 &
pids+=($!)
started munged "${pids[0]}" "$state/log/munged.log"
slurmctld -D -i -f "$SLURM_CONF" >>"$state/log/slurmctld.out" 2>&1 &
pids+=($!)
started slurmctld "${pids[1]}" "$state/log/slurmctld.log"
slurmd -D -N localnode -f "$SLURM_CONF" >>"$state/log/slurmd.out" 2>&1 &
pids+=($!)
started slurmd "${pids[2]}" "$state/log/slurmd.log"

for _ in $(seq 60); do
  node_state=$(sinfo -h -n localnode -o %T 2>/dev/null || true)
  [ "$node_state" = idle ] && break
  sleep 1
done
[ "$node_state" = idle ] || { tail -n 20 "$state/log/slurmctld.log" "$state/log/slurmd.log" >&2; \
  die "the node did not become idle within 60 s (state: '${node_state:-none}')"; }
export GLOBALMIN_SLURM_PARTITION=$partition
echo "start-local.sh: SLURM is up: node localnode ($node_size, gpu:$gpus), partition $partition," \
  "controller 127.0.0.1:$port, state in $state" >&2

if [ $# -gt 0 ]; then
  set +e
  "$@"
  rc=$?
  set -e
  exit "$rc"
fi
echo "export SLURM_CONF=$SLURM_CONF GLOBALMIN_SLURM_PARTITION=$partition"
echo "start-local.sh: running until interrupted (Ctrl-C stops the cluster)" >&2
while :; do sleep 3600 & wait $!; done
