from napari_unet_loop.app.correct_next import correct_next


def test_the_least_certain_unedited_slices_come_first():
    scores = {0: 0.1, 1: 0.5, 2: 0.3, 3: 0.9}
    assert [s.z for s in correct_next(scores, edited=[3])] == [1, 2, 0]
    assert [s.z for s in correct_next(scores, edited=[], limit=2)] == [3, 1]
