import threading
import time

from napari_unet_loop.app import warm_up
from napari_unet_loop.app.activity import job_ended, job_started, jobs_running, wait_until_idle


def test_waiting_for_idle_returns_when_the_last_job_ends():
    job_started()
    job_started()
    assert jobs_running() == 2
    assert wait_until_idle(0.05) is False
    ended = threading.Timer(0.2, lambda: (job_ended(), job_ended()))
    ended.start()
    start = time.monotonic()
    assert wait_until_idle(5.0) is True
    assert 0.1 < time.monotonic() - start < 4.0
    assert jobs_running() == 0
    job_ended()  # one too many never goes below zero
    assert jobs_running() == 0


def test_the_warm_up_waits_for_running_jobs_before_its_optimizer(monkeypatch):
    built = threading.Event()
    monkeypatch.setattr(warm_up, "import_torch", lambda: None)
    monkeypatch.setattr("torch.optim.AdamW", lambda *a, **k: built.set())
    job_started()
    thread = threading.Thread(target=warm_up.warm_up)
    thread.start()
    try:
        assert not built.wait(0.7)  # a job runs: the optimizer waits
    finally:
        job_ended()
    assert built.wait(5.0)
    thread.join(5.0)
