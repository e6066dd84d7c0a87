"""The variational-autoencoder descriptor (seed paper 2): layout, loss, training, checkpoints,
inversion (``inpaint invert``) and use as a per-patch descriptor in ``inpaint run``."""

import numpy as np
import pytest
import rasterio
import skimage.data
import torch
from click.testing import CliRunner

from cli import main
from descriptor import (
    CheckpointError,
    ModelConfig,
    TrainConfig,
    VariationalAutoencoder,
    build_model,
    invert,
    load_checkpoint,
    save_checkpoint,
    to_channels,
    train,
    vae_loss,
)
from descriptor.checkpoint import state_digest
from descriptor.vae import vae_loss_terms
from masks import paint_loss_mask


def _images():
    return [np.asarray(skimage.data.coffee()[:120, :120], np.float32) / 255.0,
            np.asarray(skimage.data.brick()[:120, :120], np.float32) / 255.0]


def _write(path, data):
    data = data if data.ndim == 3 else data[:, :, None]
    with rasterio.open(path, "w", driver="PNG", height=data.shape[0], width=data.shape[1],
                       count=data.shape[2], dtype=data.dtype.name) as dst:
        dst.write(np.moveaxis(data, 2, 0))
    return path


def _invoke(args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _assert_clean_failure(result, match):
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("Error:") and match in lines[0], lines[0]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run many small parallel regions; on a busy 2-core machine two torch threads
    make them ~20x slower than one. Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_vae(tmp_path_factory, one_thread):
    """A briefly trained 16x16 RGB VAE checkpoint (quality irrelevant, seconds to make)."""
    cfg = TrainConfig(arch="vae", patches=200, max_epochs=1, seed=0)
    result = train(_images(), cfg, progress=False)
    return save_checkpoint(result.model, tmp_path_factory.mktemp("vae") / "vae.pt",
                           {"settings": {"gamma": cfg.gamma}})


# --------------------------------------------------------------------------- model and config
def test_shapes_and_deterministic_mean_descriptor():
    torch.manual_seed(0)
    model = build_model(ModelConfig("vae"))
    assert isinstance(model, VariationalAutoencoder)
    x = torch.rand(5, 3, 16, 16)
    model.train()
    d1, d2 = model.encode(x), model.encode(x)
    assert d1.shape == (5, 128) and torch.equal(d1, d2)
    mean, logvar = model.encode_distribution(x)
    assert torch.equal(mean, d1) and logvar.shape == (5, 128)
    recon = model.decode(d1)
    assert recon.shape == (5, 3, 16, 16) and recon.min() >= 0 and recon.max() <= 1
    sampled, _, _ = model(x)                        # training mode: z is sampled
    assert not torch.equal(sampled, recon)
    model.eval()
    assert torch.equal(model(x)[0], recon)          # eval mode: z = mean
    assert torch.equal(invert(model, d1), recon)
    assert torch.equal(model.target(x), x)


def test_grey_paper_layout_and_config_rules():
    grey = build_model(ModelConfig("vae", patch_size=56, channels=1, latent=32))
    assert grey.fc_mean.in_features == 32 * 7 * 7  # the paper's 56x56 patches
    out, mean, _ = grey(torch.rand(2, 1, 56, 56))
    assert out.shape == (2, 1, 56, 56) and mean.shape == (2, 32)
    cfg = ModelConfig("vae", latent=64)
    assert cfg.descriptor_dim == 64 and not cfg.has_ir and cfg.input_size == 16
    for bad in ({"arch": "vae", "patch_size": 20}, {"arch": "vae", "channels": 2},
                {"arch": "vae", "latent": 0}, {"arch": "v32", "channels": 1},
                {"arch": "chen", "latent": 64}):
        with pytest.raises(ValueError):
            ModelConfig(**bad)
    rgb = torch.rand(4, 3, 8, 8)
    assert torch.allclose(to_channels(rgb[:, :1].expand(-1, 3, -1, -1), 1), rgb[:, :1])
    assert to_channels(rgb, 3) is rgb


def test_loss_is_gamma_bce_plus_kl():
    torch.manual_seed(1)
    model = build_model(ModelConfig("vae")).eval()
    x = torch.rand(4, 3, 16, 16)
    recon, mean, logvar = model(x)
    bce = torch.nn.functional.binary_cross_entropy(recon, x, reduction="sum") / 4
    kl = 0.5 * (mean**2 + logvar.exp() - 1 - logvar).sum() / 4
    got_bce, got_kl = vae_loss_terms(model, x)
    assert torch.allclose(got_bce, bce) and torch.allclose(got_kl, kl)
    assert torch.allclose(vae_loss(model, x, 10.0), 10 * bce + kl)
    with pytest.raises(ValueError):
        TrainConfig(arch="vae", gamma=0.5)


# --------------------------------------------------------------------------- training
def test_adam_steps_lower_the_loss():
    torch.manual_seed(0)
    model = build_model(ModelConfig("vae"))
    image = torch.from_numpy(_images()[0]).permute(2, 0, 1)
    patches = torch.stack([image[:, t:t + 16, s:s + 16] for t in range(0, 96, 12)
                           for s in range(0, 96, 12)])  # (64, 3, 16, 16)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(40):
        loss = vae_loss(model, patches, 10.0)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5])


def test_training_is_seeded_and_grey_models_train_on_grey_crops():
    cfg = TrainConfig(arch="vae", patches=160, max_epochs=2, seed=3)
    first = train(_images(), cfg, progress=False)
    second = train(_images(), cfg, progress=False)
    assert first.best_val_loss < first.history[0]["val_loss"]
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[key]), key
    grey = train(_images(), TrainConfig(arch="vae", patches=80, max_epochs=1, channels=1,
                                        latent=16), progress=False)
    assert grey.model.config.channels == 1 and grey.model.encoder[0].in_channels == 1
    assert np.isfinite(grey.best_val_loss)


# --------------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip_and_wrong_arch(tmp_path):
    model = build_model(ModelConfig("vae", latent=64))
    path = save_checkpoint(model, tmp_path / "vae.pt")
    ck = load_checkpoint(path)
    assert ck.arch == "vae" and ck.config == model.config and ck.config.descriptor_dim == 64
    for key, value in model.state_dict().items():
        assert torch.equal(value, ck.model.state_dict()[key])
    with pytest.raises(CheckpointError, match="holds a vae model, expected v128"):
        load_checkpoint(path, expected_arch="v128")


def test_checkpoints_saved_before_channels_and_latent_still_load(tmp_path):
    path = save_checkpoint(build_model(ModelConfig("v32")), tmp_path / "v32.pt")
    payload = torch.load(path, weights_only=True)
    for key in ("channels", "latent"):  # what the config dict looked like before they existed
        del payload["config"][key]
    payload["sha256"] = state_digest(payload["config"], payload["state_dict"])
    old = tmp_path / "old.pt"
    torch.save(payload, old)
    ck = load_checkpoint(old)
    assert ck.config == ModelConfig("v32") and ck.config.descriptor_dim == 32


# --------------------------------------------------------------------------- CLI
def test_invert_writes_a_grid_and_refuses_other_descriptors(tiny_vae, tmp_path):
    out = tmp_path / "grid.png"
    result = _invoke(["invert", tiny_vae, "skimage:coffee", "-o", out, "--count", "10",
                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "PSNR" in result.output and "SSIM" in result.output
    with rasterio.open(out) as src:
        grid = src.read()
    assert grid.shape[0] == 3 and grid.shape[1] >= 2 * 64 and grid.shape[2] >= 8 * 64
    again = _invoke(["invert", tiny_vae, "skimage:coffee", "-o", out])
    _assert_clean_failure(again, "--force")

    v32 = save_checkpoint(build_model(ModelConfig("v32")), tmp_path / "v32.pt")
    refused = tmp_path / "refused.png"
    result = _invoke(["invert", v32, "skimage:coffee", "-o", refused])
    _assert_clean_failure(result, "holds a v32 model: only a vae descriptor can be inverted")
    assert not refused.exists()


def test_train_and_finetune_vae_from_the_cli(tmp_path):
    out = tmp_path / "grey.pt"
    result = _invoke(["train", "skimage:brick", "--arch", "vae", "--channels", "1", "--latent",
                      "32", "--gamma", "5", "--patches", "120", "--epochs", "1", "-o", out, "-q",
                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    ck = load_checkpoint(out)
    assert (ck.config.channels, ck.config.latent) == (1, 32)
    assert ck.training["settings"]["gamma"] == 5.0
    tuned = tmp_path / "tuned.pt"
    result = _invoke(["finetune", out, "skimage:coins", "--patches", "100", "--epochs", "1",
                      "-o", tuned, "-q", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert load_checkpoint(tuned).config == ck.config
    bad = _invoke(["train", "skimage:brick", "--arch", "v32", "--latent", "64", "-o",
                   tmp_path / "x.pt"])
    assert bad.exit_code == 2 and not (tmp_path / "x.pt").exists()


def test_run_with_a_vae_changes_only_masked_pixels(tiny_vae, tmp_path):
    image = skimage.data.astronaut()[150:230, 180:260]
    mask = paint_loss_mask(image.shape[:2], coverage=0.04, seed=0)
    img = _write(tmp_path / "panel.png", image)
    msk = _write(tmp_path / "loss.png", (mask * 255).astype(np.uint8))
    out = tmp_path / "out.png"
    fast = ["--patch-step", "8", "--passes", "1", "-q", "--device", "cpu"]
    result = _invoke(["run", img, "--mask", msk, "-o", out, "--descriptor", tiny_vae,
                      "--patch-size", "16", *fast])
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        got = np.moveaxis(src.read(), 0, 2)
    assert np.array_equal(got[~mask], image[~mask])
    assert not np.array_equal(got[mask], image[mask] * 0)

    wrong_size = _invoke(["run", img, "--mask", msk, "-o", tmp_path / "o2.png",
                          "--descriptor", tiny_vae, "--patch-size", "24", *fast])
    _assert_clean_failure(wrong_size, "use --patch-size 16")
    grey = save_checkpoint(build_model(ModelConfig("vae", channels=1)), tmp_path / "grey.pt")
    refused = _invoke(["run", img, "--mask", msk, "-o", tmp_path / "o3.png", "--descriptor",
                       grey, "--patch-size", "16", *fast])
    _assert_clean_failure(refused, "inpainting needs an RGB descriptor")
    assert not (tmp_path / "o3.png").exists()
