"""The zoo and MODEL loading: downloads from a real server on 127.0.0.1, resume with Range, interrupted
connections, offline, architecture inference from the authors' state dicts, exported safetensors + JSON."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.authors import AuthorsFormatError, infer_generator, load_generator
from cyclegan.cli import main
from cyclegan.config import ModelConfig
from cyclegan.download import DownloadError, download
from cyclegan.nets import build_generator
from cyclegan.pretrained import ZOO, fetch, zoo_path
from cyclegan.translate import Translator
from mirror import Mirror

GOLDEN = Path(__file__).resolve().parents[1].parent / "shared" / "golden"
ZOO_FILE = GOLDEN / "zoo" / "latest_net_G.pth"
pytestmark = pytest.mark.skipif(not ZOO_FILE.is_file(), reason="needs ../shared/golden")


def _levels(a: Path, b: Path) -> int:
    return int(np.abs(np.asarray(Image.open(a)).astype(int) - np.asarray(Image.open(b)).astype(int)).max())


@pytest.fixture()
def mirror(monkeypatch, tmp_path):
    with Mirror() as m:
        monkeypatch.setenv("CYCLEGAN_ZOO_URL", m.url + "/models")
        monkeypatch.setenv("CYCLEGAN_HOME", str(tmp_path / "home"))
        m.files["/models/horse2zebra.pth"] = ZOO_FILE.read_bytes()
        yield m


def test_the_zoo_has_the_authors_18_models():
    assert len(ZOO) == 18 and "horse2zebra" in ZOO and "iphone2dslr_flower" in ZOO
    assert "nearly unchanged" in ZOO["monet2photo"].trap and ZOO["style_monet"].translates.startswith("photos ->")


def test_translate_by_zoo_name_through_a_mirror(mirror, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["translate", "horse2zebra", str(GOLDEN / "zoo" / "input"), "--output-dir", str(out),
                 "--no-progress"]) == 0
    assert zoo_path("horse2zebra").is_file() and not zoo_path("horse2zebra").with_suffix(".pth.part").exists()
    for expected in sorted((GOLDEN / "zoo" / "expected").glob("*_fake.png")):
        assert _levels(expected, out / expected.name.replace("_fake", "")) <= 1
    # second use: from the cache, no new request
    n = len(mirror.requests)
    Translator.from_pretrained("horse2zebra", device="cpu")
    assert len(mirror.requests) == n
    capsys.readouterr()
    assert main(["pretrained", "list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert " cached " in rows["horse2zebra"] and " cached " not in rows["zebra2horse"]


def test_an_interrupted_download_resumes_with_range(mirror):
    body = mirror.files["/models/horse2zebra.pth"]
    mirror.cut_next["/models/horse2zebra.pth"] = 5000
    with pytest.raises(DownloadError, match="interrupted.*run the same command again"):
        fetch("horse2zebra", progress=False)
    part = zoo_path("horse2zebra").with_name("horse2zebra.pth.part")
    assert part.stat().st_size == 5000 and not zoo_path("horse2zebra").exists()
    path = fetch("horse2zebra", progress=False)
    assert path.read_bytes() == body
    assert mirror.requests[-1] == ("/models/horse2zebra.pth", "bytes=5000-", 206)
    assert not part.exists()


def test_a_partial_file_left_from_before_is_resumed(tmp_path):
    body = bytes(range(256)) * 100
    with Mirror() as m:
        m.files["/f.bin"] = body
        dest = tmp_path / "f.bin"
        dest.with_name("f.bin.part").write_bytes(body[:1234])
        download(m.url + "/f.bin", dest, progress=False)
        assert dest.read_bytes() == body and m.requests == [("/f.bin", "bytes=1234-", 206)]


def test_a_file_that_does_not_load_is_refused_and_removed(mirror):
    mirror.files["/models/zebra2horse.pth"] = b"not a checkpoint" * 100
    with pytest.raises(DownloadError, match="did not give a usable file"):
        fetch("zebra2horse", progress=False)
    assert not zoo_path("zebra2horse").exists() and not zoo_path("zebra2horse").with_name("zebra2horse.pth.part").exists()


def test_offline_gives_one_line_with_the_url_and_the_place(monkeypatch, tmp_path, capsys):
    with Mirror() as m:
        url = m.url
    monkeypatch.setenv("CYCLEGAN_ZOO_URL", url)  # the server is gone: connection refused
    monkeypatch.setenv("CYCLEGAN_HOME", str(tmp_path / "home"))
    assert main(["pretrained", "download", "horse2zebra", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{url}/horse2zebra.pth" in err and str(tmp_path / "home" / "pretrained" / "horse2zebra.pth") in err


def test_unknown_name_is_one_line(tmp_path, capsys):
    assert main(["pretrained", "download", "horse2unicorn"]) == 2
    assert "pretrained list" in capsys.readouterr().err


@pytest.mark.parametrize("generator, norm, in_nc, out_nc, ngf", [
    ("resnet_9blocks", "instance", 3, 3, 8), ("resnet_6blocks", "batch", 1, 3, 4),
    ("unet_128", "instance", 3, 1, 4), ("unet_256", "batch", 3, 3, 2),
])
def test_architecture_is_inferred_from_an_authors_state_dict(tmp_path, generator, norm, in_nc, out_nc, ngf):
    cfg = ModelConfig(generator=generator, norm=norm, input_nc=in_nc, output_nc=out_nc, ngf=ngf)
    torch.manual_seed(0)
    net = build_generator(cfg, in_nc, out_nc).eval()
    path = tmp_path / "g.pth"
    torch.save(net.state_dict(), path)
    loaded, got, notes = load_generator(path)
    assert (got.generator, got.norm, got.input_nc, got.output_nc, got.ngf) == (generator, norm, in_nc, out_nc, ngf)
    side = 128 if generator == "unet_128" else (256 if generator == "unet_256" else 32)
    x = torch.rand(1, in_nc, side, side) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))


def test_old_instance_norm_statistics_are_dropped_with_a_note(tmp_path, capsys):
    sd = torch.load(ZOO_FILE, weights_only=True)
    for key in [k for k in sd if k.endswith(".weight") and sd[k].dim() == 4][:-1]:
        base = key.rsplit(".", 2)[0]
        idx = int(key.rsplit(".", 2)[1]) + 1 if key.count(".") == 2 else None
        if idx is not None:
            sd[f"{base}.{idx}.running_mean"] = torch.zeros(sd[key].shape[0])
            sd[f"{base}.{idx}.running_var"] = torch.ones(sd[key].shape[0])
            sd[f"{base}.{idx}.num_batches_tracked"] = torch.tensor(0)
    old = tmp_path / "old_net_G.pth"
    torch.save(sd, old)
    net, cfg, notes = load_generator(old)
    assert cfg.norm == "instance" and "dropped" in notes[-1]
    out = tmp_path / "o"
    assert main(["translate", str(old), str(GOLDEN / "zoo" / "input"), "--output-dir", str(out), "--no-progress"]) == 0
    assert "note:" in capsys.readouterr().out
    for expected in sorted((GOLDEN / "zoo" / "expected").glob("*_fake.png")):
        assert _levels(expected, out / expected.name.replace("_fake", "")) <= 1


def test_a_file_of_no_known_architecture_is_one_line(tmp_path, capsys):
    disc = GOLDEN / "default" / "checkpoints" / "golden" / "0_net_D_A.pth"
    with pytest.raises(AuthorsFormatError, match="fits no generator"):
        infer_generator(torch.load(disc, weights_only=True), "x")
    code = main(["translate", str(disc), str(GOLDEN / "zoo" / "input"), "--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "fits no generator" in err


def test_pickled_code_is_refused(tmp_path, capsys):
    evil = tmp_path / "evil.pth"
    torch.save({"model.1.weight": torch.zeros(1), "x": Path("/etc/passwd")}, evil)  # a global: refused
    code = main(["translate", str(evil), str(GOLDEN / "zoo" / "input"), "--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot read" in err and "Traceback" not in err


def test_dropout_is_read_from_a_resnet_and_taken_from_options_for_a_unet(tmp_path):
    for generator in ("resnet_6blocks", "unet_128"):
        path = tmp_path / f"{generator}.pth"
        torch.save(build_generator(ModelConfig(generator=generator, ngf=4, dropout=True), 3, 3).state_dict(), path)
        assert load_generator(path)[1].dropout is (generator == "resnet_6blocks")
        assert load_generator(path, ModelConfig(dropout=True))[1].dropout is True
    assert load_generator(ZOO_FILE, ModelConfig(dropout=True))[1].dropout is False  # the file says no dropout


def test_export_safetensors_with_json_then_translate_it(tmp_path, capsys):
    run = tmp_path / "ck" / "imp"
    assert main(["import", str(GOLDEN / "default" / "checkpoints" / "golden"), "--name", "imp",
                 "--checkpoints-dir", str(tmp_path / "ck")]) == 0
    target = tmp_path / "g_BtoA.safetensors"
    assert main(["export", str(run), "--format", "safetensors", "--direction", "BtoA", "--output", str(target)]) == 0
    assert "max abs difference vs PyTorch: 0" in capsys.readouterr().out
    assert target.with_suffix(".json").is_file()
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["translate", str(target), str(GOLDEN / "zoo" / "input"), "--output-dir", str(a), "--no-progress"]) == 0
    assert main(["translate", str(run), str(GOLDEN / "zoo" / "input"), "--direction", "BtoA", "--output-dir", str(b),
                 "--no-progress"]) == 0
    for f in sorted(a.glob("*.png")):
        assert np.array_equal(np.asarray(Image.open(f)), np.asarray(Image.open(b / f.name)))


def test_an_authors_run_directory_translates_both_ways_with_the_cycle(tmp_path):
    run = GOLDEN / "default" / "checkpoints" / "golden"
    out = tmp_path / "o"
    assert main(["translate", str(run), str(GOLDEN / "zoo" / "input"), "--direction", "BtoA", "--cycle",
                 "--output-dir", str(out), "--no-progress"]) == 0
    assert len(list((out / "cycle").glob("*.png"))) == 4
    t = Translator.from_pretrained(run, "BtoA", device="cpu")
    want = torch.load(run / "10_net_G_B.pth", weights_only=True)["model.1.weight"].float()
    assert torch.equal(t.generator.state_dict()["model.1.weight"], want)


def test_a_grayscale_input_generator_from_a_pth(tmp_path):
    path = tmp_path / "gray2rgb.pth"
    torch.save(build_generator(ModelConfig(ngf=4, input_nc=1, output_nc=3), 1, 3).state_dict(), path)
    for direction in ("AtoB", "BtoA"):  # one generator: the direction is a label, its input stays grayscale
        t = Translator.from_pretrained(path, direction, device="cpu")
        assert t.in_channels == 1 and t(Image.open(GOLDEN / "zoo" / "input" / "wide_200x128.png")).mode == "RGB"


def test_a_folder_named_like_a_zoo_model_does_not_hide_it(mirror, tmp_path, monkeypatch, capsys):
    (tmp_path / "horse2zebra" / "trainA").mkdir(parents=True)  # e.g. the dataset, downloaded here
    monkeypatch.chdir(tmp_path)
    t = Translator.from_pretrained("horse2zebra", device="cpu")
    assert t.in_channels == 3 and "using the pretrained model horse2zebra" in capsys.readouterr().out
