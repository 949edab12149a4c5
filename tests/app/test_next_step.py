"""The panel's hint walks the loop: open → Segment → correct → Retrain → Measure."""

from napari_unet_loop.app.next_step import CORRECT, MEASURE, SEGMENT, LoopState, next_step


def test_each_state_points_to_its_step():
    assert next_step(LoopState(has_image=False)).section is None
    assert next_step(LoopState(True)).section == SEGMENT
    segmented = LoopState(True, "em segmentation")
    assert next_step(segmented).section == CORRECT
    assert "Paint" in next_step(segmented).text
    edited = LoopState(True, "em segmentation", edited=2, truth="em truth")
    assert "Retrain" in next_step(edited).text and "2 corrected slices" in next_step(edited).text
    retrained = LoopState(True, "em segmentation", edited=2, truth="em truth", retrained=True)
    assert next_step(retrained).section == MEASURE and "em truth" in next_step(retrained).text
