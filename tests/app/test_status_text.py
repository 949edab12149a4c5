"""The Retrain status text."""

from napari_unet_loop.app.status_text import RetrainReport, slices_text
from napari_unet_loop.core.training.train import TrainUpdate


def test_slices_text_is_singular_for_one_slice():
    assert slices_text([3]) == "slice 3"
    assert slices_text([0, 1, 5]) == "slices 0, 1, 5"


def test_retrain_report_keeps_the_last_held_back_dice_and_sums_up_the_round():
    report = RetrainReport()
    first = report.add(TrainUpdate(1, 4, 0.8, None, 1.0))
    assert first == "Iteration 1/4 · loss 0.8000 · ~3 s left"
    assert "held-back Dice 0.600" in report.add(TrainUpdate(2, 4, 0.6, 0.6, 2.0))
    assert "held-back Dice 0.600" in report.add(TrainUpdate(3, 4, 0.4, None, 3.0))
    report.add(TrainUpdate(4, 4, 0.2, 0.5, 14.2, done=True))
    assert report.last_dice == 0.5 and report.best_dice == 0.6
    assert report.summary() == "4 iterations, 14 s, loss 0.500"

    class Result:
        message = "4 iterations, 14 s; 0.600 on held-back corrections vs 0.550 before"

    assert report.summary(Result()) == f"{Result.message}, loss 0.500"


def test_retrain_report_of_a_round_stopped_early():
    report = RetrainReport()
    report.add(TrainUpdate(1, 60, 0.25, None, 0.4, done=True))
    assert report.summary() == "1 iteration, 0 s, loss 0.250"
    report.add(TrainUpdate(2, 60, 0.25, 0.9, 0.8, done=True, stopped_early=True))
    assert report.summary().endswith("stopped early: the held-back corrections no longer improved")
