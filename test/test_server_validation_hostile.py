"""Requests that cannot be meant are refused with a reason: non-finite conversions, invisible or
duplicate class names (after NFKC + case folding), sampling settings with no valid distribution."""
from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from learned_nodes.image_conversions import ImageFormatError, image_fields, to_rgb8
from learned_nodes.llm.requests import MIN_TEMPERATURE, GenerationRequest, GeneratorConfig, RequestError as GenError, \
    check_request
from learned_nodes.server.limits import ServerLimits
from learned_nodes.server.validation import RequestError, check_class_names, check_image, class_name_key

LIMITS = ServerLimits(max_class_names=8, max_class_name_chars=20)


def test_full_float32_range_rescales_without_overflow_or_warning():
    arr = np.array([[-3e38, 3e38], [0.0, 3.4028235e38]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                           # "invalid value encountered in cast"
        grey = check_image(SimpleNamespace(**image_fields(arr, "32FC1")), ServerLimits())[..., 0]
    assert grey.tolist() == [[0, round(6e38 / 6.4028235e38 * 255)], [round(3e38 / 6.4028235e38 * 255), 255]]
    tiny = np.array([[0.0, 1e-45]], np.float32)                  # a subnormal range: 255 / 1e-45
    assert to_rgb8(tiny, "32FC1")[..., 0].tolist() == [[0, 255]]
    assert to_rgb8(np.full((2, 2), 7.0, np.float32), "32FC1").max() == 0
    for bad in (np.inf, -np.inf, np.nan):
        with pytest.raises(ImageFormatError, match="NaN or infinite"):
            to_rgb8(np.array([[0.0, bad]], np.float32), "32FC1")
    assert to_rgb8(np.array([[0, 65535]], np.uint16), "mono16")[..., 0].tolist() == [[0, 255]]


@pytest.mark.parametrize("names, reason", [
    (["cat", "\u200b"], "#1 has no visible character"),
    (["cat", "\u200f\u200e"], "#1 has no visible character"),
    (["\ufeff", "dog"], "#0 has no visible character"),
    (["cat", "\u00a0\u2003"], "#1 is empty"),                      # no-break / em spaces strip away
    (["cat", "\u0301"], "#1 has no visible character"),            # a lone combining accent
    (["cat", "\x07\x1b"], "#1 has no visible character"),
    (["cat", "do\x07g"], "control character U\\+0007"),
    (["Cat", "cat"], "appears twice"),
    (["caf\u00e9", "cafe\u0301"], "appears twice"),                # composed / decomposed é
    (["\uff43\uff41\uff54", "cat"], "appears twice"),              # fullwidth letters (NFKC)
    (["STRASSE", "stra\u00dfe"], "appears twice"),                 # ß case-folds to ss
])
def test_class_names_that_cannot_be_meant_are_refused(names, reason):
    with pytest.raises(RequestError, match=reason):
        check_class_names(names, [], LIMITS)


def test_visible_distinct_names_pass_normalised():
    names = check_class_names([" cafe\u0301 ", "cat", "chien \U0001f415", "\u732b", "a\u200bb"], [], LIMITS)
    assert names == ("caf\u00e9", "cat", "chien \U0001f415", "\u732b", "a\u200bb")
    assert class_name_key("Stra\u00dfe") == class_name_key("STRASSE")


@pytest.mark.parametrize("temperature, ok", [(1e-45, False), (1e-7, False), (MIN_TEMPERATURE, True),
                                             (0.0, True), (0.7, True)])
def test_temperatures_that_cannot_give_a_distribution_are_refused(temperature, ok):
    req = GenerationRequest(prompt="hi", temperature=temperature)
    if ok:
        assert check_request(req, GeneratorConfig()).temperature == temperature
    else:
        with pytest.raises(GenError, match="too small to give a valid distribution"):
            check_request(req, GeneratorConfig())


def test_sampling_refuses_logits_that_give_no_distribution():
    torch = pytest.importorskip("torch")
    from learned_nodes.llm.generation import sample_next

    gen = torch.Generator().manual_seed(0)
    assert sample_next(torch.tensor([0.0, 5.0, 1.0]), 1e-6, 1.0, gen) == 1
    with pytest.raises(ValueError, match="no valid distribution"):
        sample_next(torch.tensor([0.0, 5.0, 1.0]), 1e-45, 1.0, gen)
