"""VRAM figures from nvidia-smi's CSV output, and how the Status page words them."""

from __future__ import annotations

import subprocess

import pytest

from app.render import vram_label
from ingest.model.gpuinfo import APPS_QUERY, GPU_QUERY, parse_vram, query_vram, visible_indices

H100 = "0, NVIDIA H100 80GB HBM3, 1234, 81559\n"
TWO = "0, NVIDIA A100-SXM4-40GB, 2000, 40960\n1, NVIDIA A100-SXM4-40GB, 500, 40960\n"
APPS = "4242, 1100\n999, 50\n"


def test_one_gpu_and_this_process():
    assert parse_vram(H100, APPS, pid=4242) == {
        "gpu": "NVIDIA H100 80GB HBM3",
        "gpus": 1,
        "used_mb": 1234,
        "total_mb": 81559,
        "this_process_mb": 1100,
    }
    assert parse_vram(H100, APPS, pid=7)["this_process_mb"] is None  # not listed (another PID namespace)
    assert parse_vram(H100, "", pid=4242)["this_process_mb"] is None


def test_several_gpus_are_summed_and_this_process_counted_on_each():
    vram = parse_vram(TWO, "4242, 1100\n4242, 300\n", pid=4242)
    assert vram == {
        "gpu": "2 × NVIDIA A100-SXM4-40GB",
        "gpus": 2,
        "used_mb": 2500,
        "total_mb": 81920,
        "this_process_mb": 1400,
    }
    assert parse_vram(TWO, "", 1, visible={1})["used_mb"] == 500
    mixed = parse_vram(H100 + "1, NVIDIA L4, 10, 23034\n", "", 1)
    assert mixed["gpu"] == "NVIDIA H100 80GB HBM3, NVIDIA L4" and mixed["total_mb"] == 81559 + 23034


@pytest.mark.parametrize(
    "gpus",
    ["", "\n\n", "garbage", "0, X, [N/A], [N/A]\n", "a, X, 1, 2\n", "0, X, 1\n", "No devices were found\n"],
)
def test_empty_or_unreadable_output_is_none(gpus):
    assert parse_vram(gpus, APPS, pid=4242) is None


def test_malformed_lines_are_skipped():
    vram = parse_vram("0, X, 1\n" + H100 + "junk\n", "4242, [N/A]\nbad line\n4242\n", pid=4242)
    assert vram["used_mb"] == 1234 and vram["this_process_mb"] is None


def test_cuda_visible_devices():
    assert visible_indices(None) is None and visible_indices("GPU-1234abcd") is None
    assert visible_indices("0,2") == {0, 2} and visible_indices("") == set()


def fails(error: Exception):
    def run(args):
        raise error

    return run


@pytest.mark.parametrize(
    "error",
    [
        FileNotFoundError("nvidia-smi"),
        subprocess.TimeoutExpired("nvidia-smi", 5),
        subprocess.CalledProcessError(9, "nvidia-smi"),
    ],
)
def test_any_failure_of_nvidia_smi_is_none(error):
    assert query_vram(1, run=fails(error)) is None


def test_query_reads_both_outputs():
    answers = {GPU_QUERY: H100, APPS_QUERY: APPS}
    assert query_vram(4242, run=lambda args: answers[tuple(args)])["this_process_mb"] == 1100


def test_status_page_wording():
    vram = {"gpu": "H100", "used_mb": 1234, "total_mb": 81559, "this_process_mb": 1100}
    assert vram_label({"device": "GPU", "vram": vram}) == "1,234 of 81,559 MB (this service 1,100 MB)"
    assert vram_label({"device": "GPU", "vram": {**vram, "this_process_mb": None}}) == "1,234 of 81,559 MB"
    assert vram_label({"device": "CPU", "vram": None}) == "n/a (CPU)"
    assert vram_label({"device": "GPU", "vram": None}) == "n/a"
