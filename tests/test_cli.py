"""The command line: bad input is one line on stderr with exit code 2; results are never lost."""
from __future__ import annotations

import csv
import json

import pytest
import torch

from inference_zoo.cli import main, parse_seeds

FAST = ["--steps", "10", "--n-train", "300", "--device", "cpu", "--no-progress", "--preset", "quick"]


def run_cli(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("argv,message", [
    (["compare", "--methods", "ali,nope"], "unknown strategy 'nope'; valid: ali, alice, bigan"),
    (["compare", "--methods", "ali,ali"], "lists a method twice"),
    (["compare", "--methods", ""], "--methods is empty"),
    (["compare", "--data", "moons"], "unknown dataset 'moons' (did you mean mnist?); valid: celeba, cifar10, digits"),
    (["compare", "--data", "grid:modes=7"], "perfect square"),
    (["compare", "--data", "grid:modes=x"], "modes: expected an integer"),
    (["compare", "--data", "ring:sides=3"], "unknown option 'sides' for ring"),
    (["compare", "--data", "ring:std"], "expected key=value"),
    (["compare", "--data", "ring:std=-1"], "std must be positive"),
    (["compare", "--steps", "0"], "steps must be from 1 to 1,000,000,000"),
    (["compare", "--steps", "ten"], "--steps: expected an integer, got 'ten'"),
    (["compare", "--lr", "-1"], "learning rate must be a finite number > 0"),
    (["compare", "--lr", "inf"], "learning rate must be a finite number > 0"),
    (["compare", "--lr", "1e-4,fast"], "--lr: expected a number, got 'fast'"),
    (["compare", "--lr", ","], "--lr is empty"),
    (["compare", "--lr", "1e-4,0.0001"], "--lr lists a learning rate twice"),
    (["compare", "--beta1", "1"], "Adam betas must be in [0, 1)"),
    (["compare", "--beta1", "0.5,high"], "--beta1: expected a number, got 'high'"),
    (["compare", "--beta1", "0.5,0.5"], "--beta1 lists a value twice"),
    (["compare", "--batch-size", "1"], "batch size must be from 2 (BatchNorm)"),
    (["compare", "--seeds", "0"], "--seeds must be a positive count"),
    (["compare", "--seeds", "a,b"], "--seeds must be a count"),
    (["compare", "--seeds", "1,1"], "distinct"),
    (["compare", "--device", "tpu"], "device must be auto, cpu or cuda"),
    pytest.param(["compare", "--device", "cuda"], "CUDA is not available",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")),
    (["compare", "--preset", "huge"], "unknown preset 'huge'"),
    (["compare", "--n-train", "10"], "must be at least the batch size"),
    (["compare", "-o", "ali.generator_loss=hinge"], "generator_loss must be one of"),
    (["compare", "-o", "nope=1"], "no listed method has an option 'nope'"),
    (["compare", "-o", "vae.likelihood_std=abc"], "expected a number"),
    (["compare", "-o", "bigan.generator_loss=minimax"], "method 'bigan' is not in --methods"),
    (["compare", "-o", "vae.likelihood_std=0.1,0.1"], "a sweep needs two or more distinct values"),
    (["compare", "-o", "vae.likelihood_std=0.1,"], "a sweep needs two or more distinct values"),
    (["compare", "-o", "vae.likelihood_std=0.1,x"], "expected a number"),
    (["compare", "-o", "vae.likelihood_std=0.1,-1"], "likelihood_std must be >= 0"),
    (["compare", "-o", "ali.generator_loss=minimax,hinge"], "generator_loss must be one of"),
    (["compare", "-o", "ali.generator_loss=minimax,a b"], "a swept value may hold only letters"),
    (["compare", "--resume", "--overwrite"], "exclude each other"),
    (["compare", "--engine", "turbo"], "engine must be one of auto, single, stacked"),
    (["compare", "--data", "digits", "--engine", "stacked"], "cannot use the stacked engine: no stacked form of"),
    (["compare", "-a", "decoder_hidden=400xx"], "widths are positive integers"),
    (["compare", "-a", "depth=3"], "unknown --arch key 'depth'; valid: name, z_dim"),
    (["compare", "-a", "z_dim"], "--arch expects key=value"),
    (["compare", "-a", "maxout_pieces=0"], "maxout_pieces >= 1"),
    (["compare", "--bogus"], "No such option: --bogus"),
    (["figures", "/nonexistent/folder"], "neither a figures folder nor"),
    (["study", "nosuch"], "unknown study 'nosuch'"),
    (["compare", "--seeds", "99999999999999999999"], "below 2^31"),
    (["compare", "--seeds", "3-99999999999999999999"], "below 2^31"),
    (["compare", "--data", "grid:modes=1000000000000"], "perfect square from 1 to 10000"),
    (["compare", "--data", "ring:modes=99999999"], "ring modes must be from 1 to 10000"),
    (["compare", "--threads", "0"], "--threads must be auto, all or a number"),
    (["compare", "--eval-every", "7"], "eval_every must be 0"),
    (["study", "identity_toy", "--shard", "2/2"], "--shard must be I/N"),
    (["study", "identity_toy", "somefolder"], "folders to merge follow --merge"),
    (["study", "identity_toy", "--merge", "a"], "--merge takes --publish-only"),
    (["study", "identity_toy", "--publish-only", "--merge", "/nonexistent"], "is neither a study run folder"),
    (["nosuchcommand"], "No such command"),
    # a name typed as a value: the near miss, case aside, and what is valid
    (["compare", "--methods", "vae,alli"], "unknown strategy 'alli' (did you mean ali?); valid: ali, alice"),
    (["compare", "--methods", "ALI"], "unknown strategy 'ALI' (did you mean ali?)"),
    (["compare", "--data", "rng"], "unknown dataset 'rng' (did you mean ring?)"),
    (["compare", "--data", "ring:mode=3"], "unknown option 'mode' for ring (did you mean modes?); valid: modes"),
    (["compare", "--preset", "quik"], "unknown preset 'quik' (did you mean quick?); valid: "),
    (["study", "identity_toy", "--preset", "Quick"], "unknown preset 'Quick' (did you mean quick?)"),
    (["tune", "--budget", "10", "--preset", "quik"], "unknown preset 'quik' (did you mean quick?)"),
    (["tune", "--budget", "10", "--methods", "vea"], "unknown strategy 'vea' (did you mean vae?)"),
    (["study", "identity_to"], "unknown study 'identity_to' (did you mean identity_toy?); valid: ali_16k_steps,"),
    (["study", "identity_toy", "--methods", "alli"], "study identity_toy has no method alli (did you mean ali?)"),
    (["compare", "-a", "decoder_hiden=400x400"], "unknown --arch key 'decoder_hiden' (did you mean decoder_hidden?)"),
    (["compare", "-a", "name=MLP"], "unknown architecture 'MLP' (did you mean mlp?)"),
    (["compare", "--methods", "ali,vae", "-o", "generator_los=minimax"],
     "no listed method has an option 'generator_los' (did you mean generator_loss?); "
     "options of ali, vae: generator_loss, likelihood_std"),
    (["compare", "-o", "vae.generator_loss=minimax"], "no listed method has an option 'generator_loss'; "
                                                      "options of vae: likelihood_std"),
    (["compare", "-o", "ALI.generator_loss=minimax"], "method 'ALI' is not in --methods (did you mean ali?)"),
    (["compare", "-o", "generator_loss=minmax"], "got 'minmax' (did you mean minimax?)"),
    (["compare", "--methods", "alice", "-o", "cycle=L2"], "got 'L2' (did you mean l2?)"),
    (["compare", "--engine", "stackd"], "got 'stackd' (did you mean stacked?)"),
    (["compare", "--lr-schedule", "linaer"], "got 'linaer' (did you mean linear?)"),
])
def test_bad_input_is_one_line_and_exit_code_2(argv, message, capsys, tmp_path):
    code, out, err = run_cli(argv + (["--out", str(tmp_path / "o")] if argv[0] == "compare" else []), capsys)
    assert code == 2
    assert err.startswith("izoo: error: ") and err.count("\n") == 1, err
    assert message in err
    assert "Traceback" not in err + out


def test_version_and_h_for_help_everywhere(capsys):
    import typer

    from inference_zoo import __version__
    from inference_zoo.cli import app

    assert run_cli(["--version"], capsys)[:2] == (0, f"izoo {__version__}\n")
    for command in ["", *typer.main.get_command(app).commands]:
        code, out, _ = run_cli([command, "-h"] if command else ["-h"], capsys)
        assert code == 0 and out.startswith(f"Usage: izoo {command}".rstrip() + " ["), out


def test_shell_completion_completes_commands_and_flags(capsys, monkeypatch):
    monkeypatch.setenv("_IZOO_COMPLETE", "complete_bash")
    for words, expected in (("izoo comp", "compare"), ("izoo compare --ema", "--ema-decay"),
                            ("izoo compare --methods al", "ali alice"), ("izoo compare --methods ali,vae,po", "ali,vae,posthoc"),
                            ("izoo compare --data ri", "ring"), ("izoo tune --preset conv", "converged converged_10k converged_decay converged_long"),
                            ("izoo study mixture_c", "mixture_converged mixture_coverage")):
        monkeypatch.setenv("COMP_WORDS", words)
        monkeypatch.setenv("COMP_CWORD", str(len(words.split()) - 1))
        with pytest.raises(SystemExit) as exit:
            main([])
        assert exit.value.code == 0 and capsys.readouterr().out.split() == expected.split(), words


def test_publishing_to_a_file_is_refused(capsys, tmp_path):
    target = tmp_path / "file"
    target.write_text("keep me")
    argv = ["study", "identity_toy", "--seeds", "1", "--methods", "ali", "--steps", "10", "--device", "cpu",
            "--no-progress", "--preset", "quick", "--out", str(tmp_path / "o"), "--publish", str(target)]
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and "exists and is not a folder" in err.splitlines()[-1]
    assert target.read_text() == "keep me"
    assert not (tmp_path / "o").exists()  # refused before any training


def test_seed_specs():
    assert parse_seeds("3") == [0, 1, 2]
    assert parse_seeds("0,5,7") == [0, 5, 7]
    assert parse_seeds("2-4") == [2, 3, 4]
    assert parse_seeds("0,") == [0] and parse_seeds("5-5") == [5]


def test_compare_writes_tidy_results_figure_and_refuses_to_overwrite(capsys, tmp_path):
    out = tmp_path / "cmp"
    argv = ["compare", "--methods", "ali,vae", "--data", "ring", "--seeds", "2", "--out", str(out), *FAST]
    code, stdout, err = run_cli(argv, capsys)
    assert code == 0, err
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["study", "dataset", "method", "seed", "metric", "value"]
    assert {(r["method"], r["seed"]) for r in rows} == {("ali", "0"), ("ali", "1"), ("vae", "0"), ("vae", "1")}
    assert (out / "comparison-ring.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = list(csv.DictReader(open(out / "summary.csv")))
    assert {r["n"] for r in summary if r["metric"] == "recon_mse"} == {"2"}
    assert "modes_3sigma" in stdout

    before = (out / "results.csv").read_bytes()
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and "not empty; pass --resume" in err
    assert (out / "results.csv").read_bytes() == before  # nothing overwritten

    code, _, err = run_cli(argv + ["--resume"], capsys)  # everything finished: nothing retrained
    assert code == 0 and err.count("finished earlier, kept") == 4
    assert (out / "results.csv").read_bytes() == before

    changed = [a if a != "10" else "12" for a in argv] + ["--resume"]
    code, _, err = run_cli(changed, capsys)
    assert code == 2 and "different config (train.steps)" in err

    (out / "samples-old-dataset.png").write_bytes(b"stale figure")
    (out / "notes.txt").write_text("mine")
    code, _, err = run_cli(argv + ["--overwrite"], capsys)
    assert code == 0 and "finished earlier" not in err
    assert not (out / "samples-old-dataset.png").exists()  # izoo's own figures are replaced
    assert (out / "notes.txt").read_text() == "mine"  # the user's files are not


def test_figures_command_redraws_byte_identical_figures(capsys, tmp_path):
    out = tmp_path / "cmp"
    argv = ["compare", "--methods", "bigan", "--out", str(out), "-a", "decoder_hidden=32x32x32", "-a", "z_dim=3", *FAST]
    assert main(argv) == 0
    config = json.loads((out / "runs" / "grid" / "bigan" / "seed0" / "config.json").read_text())
    assert config["arch"]["decoder_hidden"] == [32, 32, 32] and config["arch"]["z_dim"] == 3
    first = (out / "comparison-grid.png").read_bytes()
    (out / "comparison-grid.png").unlink()
    assert main(["figures", str(out)]) == 0
    assert (out / "comparison-grid.png").read_bytes() == first


def test_list_shows_strategies_datasets_architectures_presets(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run_cli(["list"], capsys)
    assert code == 0
    for word in ("ali", "bigan", "latent", "posthoc", "vae", "grid", "ring", "identity", "mlp", "paper", "quick"):
        assert word in out


def test_corrupt_checkpoint_on_resume_is_one_line(capsys, tmp_path):
    out = tmp_path / "cmp"
    argv = ["compare", "--methods", "vae", "--out", str(out), *FAST]
    assert main(argv) == 0
    run = out / "runs" / "grid" / "vae" / "seed0"
    (run / "results.csv").unlink()  # as if killed before it finished
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint")
    capsys.readouterr()
    code, _, err = run_cli(argv + ["--resume"], capsys)
    assert code == 2 and "cannot load checkpoint" in err and err.count("\n") == 1


def test_an_option_sweep_gives_each_value_a_column_folder_and_figure(capsys, tmp_path):
    """A categorical sweep (ALI's generator loss) and a numeric one (the VAE's likelihood scale)."""
    out = tmp_path / "sweep"
    argv = ["compare", "--methods", "ali,vae", "-o", "generator_loss=minimax,nonsaturating",
            "-o", "vae.likelihood_std=0.05,0.5", "--seeds", "1", "--out", str(out), *FAST]
    code, stdout, err = run_cli(argv, capsys)
    assert code == 0, err
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert list(dict.fromkeys(r["method"] for r in rows)) == [
        "ali@generator_loss=minimax", "ali@generator_loss=nonsaturating",
        "vae@likelihood_std=0.05", "vae@likelihood_std=0.5"]
    run = out / "runs" / "grid" / "vae@likelihood_std=0.5" / "seed0"
    assert json.loads((run / "config.json").read_text())["options"] == {"likelihood_std": 0.5}
    assert "grid, vae: one seed" in stdout and "columns: likelihood_std" in stdout  # one table per method
    figures = {name: (out / name).read_bytes() for name in ("sweep-grid-generator_loss.png", "sweep-grid-likelihood_std.png")}
    for name in figures:
        (out / name).unlink()
    assert main(["figures", str(out)]) == 0  # redrawn from the tables alone, byte for byte
    assert {name: (out / name).read_bytes() for name in figures} == figures
    assert not (out / "sweep-grid.png").exists()  # no rate was swept


def test_a_learning_rate_sweep_is_one_stack_with_a_column_folder_and_curve_per_rate(capsys, tmp_path):
    out = tmp_path / "sweep"
    argv = ["compare", "--methods", "ali", "--lr", "1e-3,1e-4", "--seeds", "2", "--out", str(out), *FAST]
    code, stdout, err = run_cli(argv, capsys)
    assert code == 0, err
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert {(r["method"], r["seed"]) for r in rows} == {
        ("ali@lr=0.001", "0"), ("ali@lr=0.001", "1"), ("ali@lr=0.0001", "0"), ("ali@lr=0.0001", "1")}
    run = out / "runs" / "grid" / "ali@lr=0.0001" / "seed1"
    assert json.loads((run / "config.json").read_text())["train"]["lr"] == 1e-4
    stack = json.loads((run / "env.json").read_text())["stacks"][0]
    assert stack["lrs"] == [1e-3, 1e-3, 1e-4, 1e-4] and stack["seeds"] == [0, 1, 0, 1]
    assert "grid, ali: mean" in stdout and "columns: lr" in stdout and "0.0001" in stdout  # a table per method
    sweep = (out / "sweep-grid.png").read_bytes()
    assert sweep[:8] == b"\x89PNG\r\n\x1a\n"
    (out / "sweep-grid.png").unlink()
    assert main(["figures", str(out)]) == 0  # redrawn from the tables alone, byte for byte
    assert (out / "sweep-grid.png").read_bytes() == sweep


def test_ctrl_c_says_how_to_continue_exits_130_and_resume_finishes_the_run(tmp_path):
    """A real SIGINT mid-training (after the first checkpoint): one line naming --resume, exit
    status 130 (so `&&` chains and scripts stop), and the same command with --resume finishes it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "r"
    command = [sys.executable, "-m", "inference_zoo", "compare", "--methods", "vae", "--preset", "quick",
               "--steps", "3000", "--seeds", "1", "--threads", "1", "--no-progress", "--out", str(out),
               "--set", "log_every=50", "--set", "checkpoint_every=100"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # the child starts with SIGINT at its default, as under a shell's foreground job: a process that
    # inherits SIGINT ignored (some earlier code in this pytest process leaves it so) never sees Ctrl-C
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    checkpoint = out / "runs/grid/vae/seed0/checkpoint.pt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert checkpoint.exists(), proc.communicate()[1]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    line = err.strip().splitlines()[-1]
    assert line.startswith("izoo: interrupted") and "--resume" in line and "Traceback" not in err
    assert not (out / "results.csv").exists()
    resumed = subprocess.run([*command, "--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "runs/grid/vae/seed0/results.csv").is_file() and (out / "results.csv").is_file()
