"""The CPU thread policy (cpu_threads.py): a shorter OpenMP spin set before torch loads, the
user's own OpenMP settings respected, thread counts from --threads and the available CPUs,
and by default one thread fewer while a real busy process holds one of our CPUs.

Each check that depends on what OpenMP read at load time runs in a fresh interpreter, and asks
OpenMP itself (OMP_DISPLAY_ENV=VERBOSE makes GNU libgomp print the settings it took) rather than
trusting the environment variable: libgomp's default spins 300,000 times at a barrier before
sleeping, the package asks for 3,000, and that count is what the checks read. The load checks start real busy processes
and read the kernel's counters. No timings here: the speed effect is benchmarks/busy_machine.py's.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import subprocess
import sys
import time

import pytest

from cyclegan.cli import main
from cyclegan.config import TrainConfig
from cyclegan.cpu_threads import (LoadAwareThreads, cgroup_cpu_limit, process_ticks, set_wait_policy_default,
                                  threads_for_load, use_threads)

from conftest import make_images, tiny_config
from test_never_lose_work import SRC, TINY_ARGS

REPORT = ("import json, os, torch; print(json.dumps({'policy': os.environ.get('OMP_WAIT_POLICY'), "
          "'spincount': os.environ.get('GOMP_SPINCOUNT'), 'threads': torch.get_num_threads()}))")


def _run(code: str, **env: str) -> tuple[dict, int | None]:
    """Run `code` in a fresh interpreter with a clean OpenMP environment plus `env`; return its
    JSON line and the spin count libgomp reports having read (None if it prints none)."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("OMP_", "GOMP_", "KMP_", "MKL_"))}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, "OMP_DISPLAY_ENV": "VERBOSE", **env},
                         capture_output=True, text=True, check=True)
    found = re.search(r"GOMP_SPINCOUNT\s*=\s*'(\d+)'", out.stderr + out.stdout)
    return json.loads(out.stdout.strip().splitlines()[-1]), int(found.group(1)) if found else None


def test_importing_cyclegan_first_makes_openmp_spin_briefly():
    report, spins = _run("import cyclegan; " + REPORT)
    assert report["spincount"] == "3000" and report["policy"] is None
    if spins is None:
        pytest.skip("this torch build's OpenMP is not GNU libgomp: it does not report its spin count")
    assert spins == 3000


def test_the_command_line_entry_sets_it_too():
    # `cyclegan ...` and `python -m cyclegan` import cyclegan.cli: the package __init__ runs first.
    report, spins = _run("import cyclegan.cli; " + REPORT)
    assert report["spincount"] == "3000"
    assert spins in (None, 3000)


def test_an_explicit_user_setting_is_kept():
    report, spins = _run("import cyclegan; " + REPORT, OMP_WAIT_POLICY="ACTIVE")
    assert report["policy"] == "ACTIVE"
    assert spins is None or spins > 300_000  # libgomp's active policy spins far longer than its default
    report, spins = _run("import cyclegan; " + REPORT, GOMP_SPINCOUNT="20000")
    assert report["policy"] is None and report["spincount"] == "20000"  # the user's count stays
    assert spins in (None, 20000)
    report, spins = _run("import cyclegan; " + REPORT, OMP_WAIT_POLICY="PASSIVE")
    assert report["spincount"] is None  # a policy is a wait choice too
    assert spins in (None, 0)


def test_after_torch_loaded_the_environment_is_not_made_to_lie():
    # OpenMP has already read its settings: the package must not claim a policy that is not in force.
    report, spins = _run("import torch; import cyclegan; " + REPORT)
    assert report["policy"] is None and report["spincount"] is None
    assert spins in (None, 300_000)


def test_set_wait_policy_default_only_fills_a_gap():
    env: dict[str, str] = {}
    # torch is loaded in this test process, so nothing is set here whatever the environment.
    assert set_wait_policy_default(env) is False and env == {}


def test_threads_default_is_capped_at_the_cpus_the_process_may_use():
    code = "import os; os.sched_setaffinity(0, {0}); import cyclegan; from cyclegan.cpu_threads import use_threads; " \
           "import torch; torch.set_num_threads(4); use_threads(0); " + REPORT
    report, _ = _run(code)
    assert report["threads"] == 1
    # with an explicit OMP_NUM_THREADS the user chose: the count is left as it is
    report, _ = _run(code, OMP_NUM_THREADS="3")
    assert report["threads"] == 4


def test_threads_option_sets_the_count_and_a_lower_count_stays():
    import torch

    before = torch.get_num_threads()
    try:
        assert use_threads(3) == 3
        torch.set_num_threads(1)
        assert use_threads(0) == 1  # never raised above what the caller chose
    finally:
        torch.set_num_threads(before)


def test_cgroup_quota(tmp_path):
    assert cgroup_cpu_limit(tmp_path) is None  # no cpu.max: no limit
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(tmp_path) is None
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_limit(tmp_path) == 2
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert cgroup_cpu_limit(tmp_path) == 1


def test_threads_is_a_run_option_saved_in_the_config(unaligned_root, tmp_path):
    import torch

    before = torch.get_num_threads()
    try:
        assert main(["train", str(unaligned_root), "--checkpoints-dir", str(tmp_path / "r"), "--name", "t",
                     "--generator", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load-size", "36",
                     "--crop-size", "32", "--num-workers", "0", "--max-steps", "1", "--no-progress",
                     "--threads", "1"]) == 0
        assert TrainConfig.load(tmp_path / "r" / "t" / "config.json").run.threads == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("command", [["translate", "RUN", "IN", "--output-dir", "OUT"], ["evaluate", "RUN"]])
def test_negative_threads_is_one_line_error(command, tmp_path, capsys):
    args = [str(tmp_path / a) if a.isupper() else a for a in command]
    assert main([*args, "--threads", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--threads" in err[0]


def test_changing_threads_on_resume_is_allowed(unaligned_root, tmp_path):
    import torch

    from cyclegan import train

    before = torch.get_num_threads()
    try:
        train(tiny_config(unaligned_root, tmp_path, max_steps=2, threads=1))
        train(tiny_config(unaligned_root, tmp_path, max_steps=3, threads=2), resume=True)
    finally:
        torch.set_num_threads(before)


# ---- following the load: real busy processes on real CPUs, the kernel's own counters

SPIN_ON = "import os, time\nos.sched_setaffinity(0, {{{cpu}}})\nend = time.monotonic() + 60\nwhile time.monotonic() < end:\n    pass\n"


def _two_cpus() -> list[int]:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("needs two CPUs")
    return cpus[:2]


def _other_process_spinning_on(cpu: int) -> subprocess.Popen:
    """A busy process that is not ours in the sense of the load (not a multiprocessing child)."""
    return subprocess.Popen([sys.executable, "-c", SPIN_ON.format(cpu=cpu)])


def _spin(cpu: int) -> None:
    exec(SPIN_ON.format(cpu=cpu))


def _others(follow: LoadAwareThreads) -> float:
    follow.others()  # start a fresh window
    time.sleep(follow.interval + 0.05)
    return follow.others()


def test_threads_for_load_gives_up_a_thread_per_cpu_taken():
    assert threads_for_load(2, most=2, cpus=2, others=0.0) == 2
    assert threads_for_load(2, most=2, cpus=2, others=0.4) == 2
    assert threads_for_load(2, most=2, cpus=2, others=0.6) == 1
    assert threads_for_load(2, most=2, cpus=2, others=3.0) == 1  # never below one
    assert threads_for_load(16, most=16, cpus=16, others=0.9) == 15
    assert threads_for_load(2, most=2, cpus=64, others=10.0) == 2  # never above the count the run started with
    # back up only with a quarter of a CPU to spare beyond the boundary: no flipping at every reading
    assert threads_for_load(1, most=2, cpus=2, others=0.4) == 1
    assert threads_for_load(1, most=2, cpus=2, others=0.2) == 2


def test_process_ticks_reads_a_name_with_spaces_and_parentheses():
    code = "open('/proc/self/comm', 'w').write('a) b (c')\nimport time\nend = time.monotonic() + 0.6\n" \
           "while time.monotonic() < end:\n    pass\nprint('spun', flush=True)\ntime.sleep(30)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "spun"
        assert "a) b (c" in open(f"/proc/{proc.pid}/stat").read()
        ticks = process_ticks(proc.pid)
        assert 0.4 * os.sysconf("SC_CLK_TCK") <= ticks <= 5 * os.sysconf("SC_CLK_TCK")
    finally:
        proc.kill()
        proc.wait()


def test_a_busy_process_on_our_cpus_takes_a_thread_away_and_gives_it_back():
    import torch

    cpus = _two_cpus()
    before = torch.get_num_threads()
    follow = LoadAwareThreads(2, cpus, interval=0.5)
    quiet = _others(follow) < 0.25
    spinner = _other_process_spinning_on(cpus[0])
    try:
        message, deadline = None, time.monotonic() + 20
        while message is None and time.monotonic() < deadline:
            time.sleep(0.1)
            message = follow.update()
        assert follow.threads == 1 and torch.get_num_threads() == 1
        assert message.startswith("other processes are using") and "(--threads 2 keeps 2)" in message
        spinner.kill()
        spinner.wait()
        if not quiet:
            pytest.skip("other work on these CPUs: whether the thread comes back depends on it")
        message, deadline = None, time.monotonic() + 20
        while message is None and time.monotonic() < deadline:
            time.sleep(0.1)
            message = follow.update()
        assert follow.threads == 2 and torch.get_num_threads() == 2
        assert message == "the CPUs are free again: 2 threads"
    finally:
        spinner.kill()
        spinner.wait()
        torch.set_num_threads(before)


def test_our_own_loader_workers_are_not_the_others():
    cpu = _two_cpus()[0]
    follow = LoadAwareThreads(2, [cpu], interval=0.5)
    # a multiprocessing child, as the data loader's workers are: its CPU time is ours
    worker = multiprocessing.get_context("fork").Process(target=_spin, args=(cpu,), daemon=True)
    worker.start()
    try:
        with_worker = _others(follow)
    finally:
        worker.kill()
        worker.join()
    spinner = _other_process_spinning_on(cpu)
    try:
        with_other = _others(follow)
    finally:
        spinner.kill()
        spinner.wait()
    # The same load on the same CPU: the worker's counts as ours, the stranger's as the others'.
    assert with_other - with_worker > 0.5, (with_worker, with_other)


def test_an_explicit_count_is_not_changed_by_the_load():
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert LoadAwareThreads.for_run(2, distributed=False, environ={}) is None  # --threads 2
        assert LoadAwareThreads.for_run(0, distributed=False, environ={"OMP_NUM_THREADS": "2"}) is None
        assert LoadAwareThreads.for_run(0, distributed=True, environ={}) is None  # torchrun shares the CPUs out
        assert LoadAwareThreads.for_run(0, distributed=False, environ={}) is not None
        torch.set_num_threads(1)
        assert LoadAwareThreads.for_run(0, distributed=False, environ={}) is None  # one thread: nothing to give up
    finally:
        torch.set_num_threads(before)


def test_translating_beside_a_busy_process_gives_up_a_thread(tmp_path, capsys):
    import torch

    from cyclegan.nets import ResnetGenerator
    from cyclegan.translate import Translator

    cpus = _two_cpus()
    before = torch.get_num_threads()
    torch.manual_seed(0)
    translator = Translator(ResnetGenerator(3, 3, ngf=8, n_blocks=1).eval(), 4, 3, torch.device("cpu"))
    inputs = make_images(tmp_path / "in", 12, size=(48, 48))
    spinner = _other_process_spinning_on(cpus[0])
    try:
        follow = LoadAwareThreads(2, cpus, interval=0.2)
        time.sleep(0.5)  # the first reading then covers the busy process
        written = translator.translate_files(inputs, tmp_path / "out", progress=False, follow_load=follow)
    finally:
        spinner.kill()
        spinner.wait()
        torch.set_num_threads(before)
    assert len(written) == 12 and follow.threads == 1
    assert "cyclegan: other processes are using" in capsys.readouterr().err


@pytest.mark.slow
def test_training_beside_a_busy_process_says_it_runs_one_thread_fewer(unaligned_root, tmp_path):
    cpus = _two_cpus()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "KMP_", "MKL_"))}
    env["PYTHONPATH"] = os.pathsep.join([SRC, env.get("PYTHONPATH", "")])
    code = f"import os, sys; os.sched_setaffinity(0, {set(cpus)}); from cyclegan.cli import main; sys.exit(main(sys.argv[1:]))"
    spinner = _other_process_spinning_on(cpus[0])
    try:
        done = subprocess.run([sys.executable, "-c", code, "train", str(unaligned_root), "--name", "busy",
                               "--checkpoints-dir", str(tmp_path / "runs"), *TINY_ARGS, "--n-epochs", "100",
                               "--max-steps", "400", "--print-freq", "50", "--save-latest-freq", "1000",
                               "--sample-freq", "1000", "--report-freq", "0"],
                              capture_output=True, text=True, env=env, timeout=300)
    finally:
        spinner.kill()
        spinner.wait()
    assert done.returncode == 0, done.stderr
    assert "other processes are using" in done.stdout and "1 thread for now (--threads 2 keeps 2)" in done.stdout
