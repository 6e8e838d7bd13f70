"""LR simulation like the sensor: PSF, noise and radiometry, checked against hand values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zoomplan.data.lowres import PSF_OVERSAMPLE, Radiometry, Streams, gaussian_kernel1d, psf_mtf_nyquist, simulate_lr
from zoomplan.models.card import Normalization


def test_gaussian_kernel_hand_values() -> None:
    k = gaussian_kernel1d(1.0)
    assert k.numel() == 7  # radius 3 sigma
    # sum over x = -3..3 of exp(-x^2 / 2) = 1 + 2 (0.60653 + 0.13534 + 0.01111) = 2.50597
    assert float(k[3]) == pytest.approx(1 / 2.50597, rel=1e-4)
    assert float(k[4]) == pytest.approx(math.exp(-0.5) / 2.50597, rel=1e-4)
    assert float(k.sum()) == pytest.approx(1.0)
    assert torch.equal(k, k.flip(0))


def test_psf_mtf_at_nyquist_matches_the_sentinel2_specification() -> None:
    # The pixel's box alone: sinc(0.5) = 2 / pi, sharper than the 0.15-0.3 specified for the 10 m bands.
    assert psf_mtf_nyquist(0.0) == pytest.approx(2 / math.pi)
    # sigma 0.5 px: exp(-2 pi^2 0.25 0.25) * 2 / pi = 0.1854, inside the specification.
    assert psf_mtf_nyquist(0.5) == pytest.approx(math.exp(-(math.pi**2) / 8) * 2 / math.pi, rel=1e-9)
    assert 0.15 <= psf_mtf_nyquist(0.5) <= 0.3


def test_area_averaging_without_psf_is_a_box_of_one_pixel() -> None:
    x = torch.zeros(1, 1, 32, 32)
    x[..., :16] = 1.0  # left half bright
    lr = simulate_lr(x, 8)
    assert torch.equal(lr[0, 0, 0], torch.tensor([1, 1, 1, 1, 0, 0, 0, 0], dtype=torch.float32))


def test_psf_spreads_an_edge_as_a_gaussian_then_averages() -> None:
    """Against an independent numpy reference: 1-D convolution with the sampled Gaussian (edges reflected),
    then a box of PSF_OVERSAMPLE fine pixels per LR pixel."""
    sigma = 0.5
    x = torch.zeros(1, 1, 32, 32)
    x[..., :16] = 1.0
    lr = simulate_lr(x, 8, psf_sigma=sigma)[0, 0, 0].numpy()
    s_fine = sigma * PSF_OVERSAMPLE
    r = math.ceil(3 * s_fine)
    w = np.exp(-0.5 * (np.arange(-r, r + 1) / s_fine) ** 2)
    w /= w.sum()
    row = np.r_[np.ones(16), np.zeros(16)]
    padded = np.pad(row, r, mode="reflect")
    blurred = np.convolve(padded, w, mode="valid")
    expected = blurred.reshape(8, PSF_OVERSAMPLE).mean(axis=1)
    np.testing.assert_allclose(lr, expected, atol=1e-6)
    assert 0.5 < lr[3] < 1.0 and 0.0 < lr[4] < 0.5  # light crosses the edge
    assert lr[0] == pytest.approx(1.0, abs=1e-6) and lr[7] == pytest.approx(0.0, abs=1e-6)


def test_psf_keeps_a_uniform_tile_uniform() -> None:
    x = torch.full((2, 3, 128, 128), 0.37)
    np.testing.assert_allclose(simulate_lr(x, 8, psf_sigma=0.5).numpy(), 0.37, atol=1e-6)


def test_radiometry_hand_values() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.full((1, 3, 2, 2), 0.2)
    assert torch.equal(Radiometry()(x, gen), x)  # identity: nothing changes
    out = Radiometry(gain=(2.0, 2.0))(x, gen)
    np.testing.assert_allclose(out.numpy(), 0.4, atol=1e-6)
    out = Radiometry(haze=(0.1, 0.1), haze_colour=(0.5, 1.0, 1.0))(x, gen)
    np.testing.assert_allclose(out[0, :, 0, 0].numpy(), [0.25, 0.3, 0.3], atol=1e-6)
    out = Radiometry(gamma=(2.0, 2.0))(x, gen)
    np.testing.assert_allclose(out.numpy(), 0.04, atol=1e-6)
    out = Radiometry(gain=(10.0, 10.0))(x, gen)
    assert float(out.max()) == 1.0  # clipped to the unit range


def test_radiometry_noise_has_the_configured_deviation() -> None:
    gen = torch.Generator().manual_seed(1)
    out = Radiometry(noise=0.02)(torch.full((4, 3, 64, 64), 0.5), gen)
    assert float(out.std()) == pytest.approx(0.02, rel=0.05)
    assert float(out.mean()) == pytest.approx(0.5, abs=1e-3)


def test_radiometry_from_recipe_table_and_unknown_keys() -> None:
    r = Radiometry.from_dict(
        {"gain": [0.8, 1.2], "band_gain": 0.1, "haze": [-0.05, 0.1], "gamma": [0.8, 1.25], "noise": 0.01}
    )
    assert r.gain == (0.8, 1.2) and r.haze == (-0.05, 0.1) and r.noise == 0.01 and not r.identity
    with pytest.raises(ValueError, match="unknown LR radiometry key"):
        Radiometry.from_dict({"brightness": 1})


def test_streams_perturb_the_lr_stream_only_when_augmenting() -> None:
    norm = Normalization((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    s = Streams(32, 8, norm, norm, radiometry=Radiometry(gain=(2.0, 2.0)))
    img = torch.full((1, 3, 64, 64), 50, dtype=torch.uint8)
    hr, lr = s(img)
    np.testing.assert_allclose(lr.numpy(), 50 / 255, atol=1e-6)
    hr_a, lr_a = s(img, generator=torch.Generator().manual_seed(0), augment=True)
    np.testing.assert_allclose(lr_a.numpy(), 100 / 255, atol=1e-6)
    np.testing.assert_allclose(hr_a.numpy(), hr.numpy(), atol=1e-6)  # the HR stream is not perturbed
