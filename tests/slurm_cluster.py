"""A real one-node SLURM cluster for tests: munged + slurmctld + slurmd under a temporary prefix.

No systemd, no cgroups, no accounting (see profiles/README.md, 4.): state, spool,
logs, PID files and the munge key and socket all live under the prefix; each daemon is started in
its daemon mode with a PID file under the prefix and stopped by the PID read back from it. Every
wait is bounded.

One path cannot live under the prefix: the Snakemake SLURM plugin strips every ``SLURM_*``
variable (``SLURM_CONF`` included) before the in-job ``srun``, so the configuration must be
readable at ``/etc/slurm/slurm.conf``. The cluster writes it there only when no file is there
(or one it wrote itself, marked on its first line) and removes it again on stop.

``SlurmCluster.start()`` raises ``SlurmUnavailable`` with a one-line reason whenever the machine
cannot install or run SLURM; the test turns that into a skip.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
BINARIES = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "srun"]
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# written by delta-v2a tests/slurm_cluster.py"
SBIN_DIRS = ["/usr/sbin", "/sbin", "/usr/local/sbin"]


class SlurmUnavailable(RuntimeError):
    """SLURM cannot be installed or started here; the message says why (one line)."""


def _which(name: str) -> str | None:
    path = os.environ.get("PATH", "") + os.pathsep + os.pathsep.join(SBIN_DIRS)
    return shutil.which(name, path=path)


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if _which(b) is None]


def ensure_installed(timeout_s: float = 600) -> None:
    """Install the Debian packages when a binary is missing (root + apt only), bounded."""
    if not missing_binaries():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SlurmUnavailable(
            f"SLURM binaries missing ({', '.join(missing_binaries())}) and cannot install them "
            "here (needs root and apt-get): apt-get install " + " ".join(PACKAGES)
        )
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    deadline = time.monotonic() + timeout_s
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *PACKAGES]):
        left = deadline - time.monotonic()
        try:
            proc = subprocess.run(
                cmd,
                env=env,
                capture_output=True,
                text=True,
                timeout=max(1.0, left),
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as err:
            raise SlurmUnavailable(
                f"`{' '.join(cmd)}` did not finish in {timeout_s:.0f} s"
            ) from err
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise SlurmUnavailable(f"`{' '.join(cmd)}` failed: {last}")
    if missing_binaries():
        raise SlurmUnavailable(f"still missing after apt-get: {', '.join(missing_binaries())}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mem_total_mb() -> int:
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 4096


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as gone
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _live_pid(pidfile: Path) -> int | None:
    """The PID in a PID file, if that process is still alive."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


class SlurmCluster:
    """One node (this host) in one partition; ``cpus``/``mem_mb`` default to the machine's."""

    def __init__(
        self,
        prefix: Path | None = None,
        partition: str = "debug",
        cpus: int | None = None,
        mem_mb: int | None = None,
        min_job_age: int = 300,
    ) -> None:
        # munged refuses a socket directory without o+x: a world-traversable prefix, not the
        # 0700 folders pytest makes.
        self._own_prefix = prefix is None  # removed again by stop()
        self.prefix = Path(prefix or tempfile.mkdtemp(prefix="delta-v2a-slurm-"))
        self.prefix.mkdir(parents=True, exist_ok=True)
        self.prefix.chmod(0o755)
        self.partition = partition
        self.cpus = cpus or os.cpu_count() or 1
        # Memory is not enforced here (no cgroups, no accounting): the node advertises at least
        # 16 GB so two 8 GB model jobs fit side by side even on a smaller CI machine.
        self.mem_mb = mem_mb or max(16384, int(_mem_total_mb() * 0.9))
        self.min_job_age = min_job_age
        self.hostname = socket.gethostname().split(".")[0]
        self.conf = self.prefix / "etc/slurm.conf"
        self.munge_socket = self.prefix / "run/munge/munge.socket.2"
        self.pidfiles = {
            "munged": self.prefix / "run/munged.pid",
            "slurmctld": self.prefix / "run/slurmctld.pid",
            "slurmd": self.prefix / "run/slurmd.pid",
        }
        self.logs = {
            "munged": self.prefix / "log/munged.log",
            "slurmctld": self.prefix / "log/slurmctld.log",
            "slurmd": self.prefix / "log/slurmd.log",
        }
        self._wrote_system_conf = False
        self.started = False

    # ------------------------------------------------------------------ configuration
    def _marker(self) -> str:
        return f"{MARKER} for the test cluster under {self.prefix}"

    def env(self) -> dict[str, str]:
        """Environment for client commands (sbatch, squeue, snakemake) that use this cluster."""
        env = dict(os.environ)
        env["SLURM_CONF"] = str(self.conf)
        env["PATH"] = env.get("PATH", "") + os.pathsep + os.pathsep.join(SBIN_DIRS)
        for var in list(env):  # a test run from inside a SLURM job must not inherit its job
            if var.startswith(("SLURM_JOB", "SLURM_STEP", "SBATCH_", "SRUN_")):
                env.pop(var)
        return env

    def _write_config(self) -> None:
        for sub in ("etc", "run/munge", "log", "state", "spool", "lib/munge"):
            (self.prefix / sub).mkdir(parents=True, exist_ok=True)
        (self.prefix / "run/munge").chmod(0o755)
        key = self.prefix / "etc/munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)
        ctld_port, d_port = _free_port(), _free_port()
        lines = [
            self._marker(),
            "ClusterName=deltav2a",
            f"SlurmctldHost={self.hostname}(127.0.0.1)",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={d_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={self.prefix / 'state'}",
            f"SlurmdSpoolDir={self.prefix / 'spool'}",
            f"SlurmctldPidFile={self.pidfiles['slurmctld']}",
            f"SlurmdPidFile={self.pidfiles['slurmd']}",
            f"SlurmctldLogFile={self.logs['slurmctld']}",
            f"SlurmdLogFile={self.logs['slurmd']}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            # no systemd, no cgroups, no accounting
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "SwitchType=switch/none",
            "SchedulerType=sched/backfill",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU_Memory",
            "SlurmdParameters=config_overrides",
            "ReturnToService=2",
            # squeue must still list a finished job when Snakemake asks (>= 3x first check)
            f"MinJobAge={self.min_job_age}",
            "KillWait=5",
            "InactiveLimit=0",
            "Waittime=0",
            "SlurmctldTimeout=30",
            "SlurmdTimeout=30",
            f"NodeName={self.hostname} NodeAddr=127.0.0.1 CPUs={self.cpus} "
            f"RealMemory={self.mem_mb} State=UNKNOWN",
            f"PartitionName={self.partition} Nodes={self.hostname} Default=YES "
            "MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    def _install_system_conf(self) -> None:
        if SYSTEM_CONF.exists() or SYSTEM_CONF.is_symlink():
            first = SYSTEM_CONF.read_text(errors="replace").split("\n", 1)[0]
            if not first.startswith(MARKER):
                raise SlurmUnavailable(
                    f"{SYSTEM_CONF} exists and was not written by this test: leaving the site's "
                    "SLURM configuration alone"
                )
            m = re.search(r"under (\S+)$", first)
            other = Path(m.group(1)) if m else None
            if other and other != self.prefix and _live_pid(other / "run/slurmctld.pid"):
                raise SlurmUnavailable(f"another test cluster is running under {other}")
        try:
            SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.conf, SYSTEM_CONF)
        except OSError as err:
            raise SlurmUnavailable(f"cannot write {SYSTEM_CONF}: {err}") from err
        self._wrote_system_conf = True

    # ------------------------------------------------------------------ daemons
    def _run_daemon(self, name: str, cmd: list[str], timeout_s: float = 20) -> None:
        proc = subprocess.run(
            cmd,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            raise SlurmUnavailable(
                f"{name} did not start (exit {proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()[-300:]} {self._log_tail(name)}"
            )
        self._wait(
            lambda: self._pid(name) is not None,
            timeout_s,
            f"{name} wrote no PID file {self.pidfiles[name]}",
        )

    def _log_tail(self, name: str, n: int = 3) -> str:
        path = self.logs.get(name)
        if path is None or not path.exists():
            return ""
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-n:])

    def _pid(self, name: str) -> int | None:
        return _live_pid(self.pidfiles[name])

    def _wait(self, predicate, timeout_s: float, what: str, every: float = 0.25) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(every)
        raise SlurmUnavailable(f"timed out after {timeout_s:.0f} s: {what}")

    def client(self, *args: str, timeout_s: float = 15) -> subprocess.CompletedProcess:
        return subprocess.run(
            list(args),
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
        )

    def node_state(self) -> str:
        try:
            proc = self.client("sinfo", "-h", "-N", "-o", "%T", timeout_s=10)
        except subprocess.TimeoutExpired:
            return ""
        return proc.stdout.strip().lower() if proc.returncode == 0 else ""

    def start(self, timeout_s: float = 60) -> SlurmCluster:
        """Configure and start munged, slurmctld and slurmd; return once the node is idle."""
        if os.geteuid() != 0:
            raise SlurmUnavailable("starting slurmd needs root (it launches jobs as their user)")
        ensure_installed()
        self._write_config()
        self._install_system_conf()
        self.started = True  # from here on, stop() has something to undo
        self._run_daemon(
            "munged",
            [
                _which("munged"),
                "--force",
                f"--socket={self.munge_socket}",
                f"--key-file={self.prefix / 'etc/munge.key'}",
                f"--pid-file={self.pidfiles['munged']}",
                f"--log-file={self.logs['munged']}",
                f"--seed-file={self.prefix / 'lib/munge/munged.seed'}",
            ],
        )
        self._run_daemon("slurmctld", [_which("slurmctld"), "-f", str(self.conf), "-c"])
        self._run_daemon("slurmd", [_which("slurmd"), "-f", str(self.conf)])
        try:
            self._wait(
                lambda: self.node_state().startswith("idle"),
                timeout_s,
                f"node never became idle (sinfo: {self.node_state()!r})",
                every=0.5,
            )
        except SlurmUnavailable as err:
            raise SlurmUnavailable(
                f"{err}; slurmctld: {self._log_tail('slurmctld')}; "
                f"slurmd: {self._log_tail('slurmd')}"
            ) from err
        return self

    def stop(self, timeout_s: float = 15) -> None:
        """Stop the daemons this cluster started (by their PID files), undo /etc/slurm, and
        remove the prefix when this object made it."""
        if not self.started:
            if self._own_prefix:
                shutil.rmtree(self.prefix, ignore_errors=True)
            return
        with contextlib.suppress(Exception):  # no job of ours may outlive the cluster
            self.client("scancel", "--full", "--partition", self.partition, timeout_s=10)
        for name in ("slurmd", "slurmctld", "munged"):
            pid = self._pid(name)
            if pid is None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self._wrote_system_conf:
            with contextlib.suppress(OSError):
                if SYSTEM_CONF.read_text(errors="replace").startswith(self._marker()):
                    SYSTEM_CONF.unlink()  # ours, not another test cluster's
            self._wrote_system_conf = False
        self.started = False
        if self._own_prefix and not any(self._pid(name) for name in self.pidfiles):
            shutil.rmtree(self.prefix, ignore_errors=True)

    def __enter__(self) -> SlurmCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ evidence
    def launched_batch_jobs(self) -> set[int]:
        """Job ids slurmd says it launched as batch jobs ("Launching batch job N")."""
        text = (
            self.logs["slurmd"].read_text(errors="replace") if self.logs["slurmd"].exists() else ""
        )
        return {int(n) for n in re.findall(r"Launching batch job (\d+)", text)}
