"""The U-Net Loop panel docks from the Plugins menu, hosts the four steps and says what's next."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt

from napari_unet_loop.app.next_step import BATCH, CORRECT, MEASURE, SEGMENT
from napari_unet_loop.app.session import session_for
from napari_unet_loop.widgets.batch_widget import BatchWidget
from napari_unet_loop.widgets.metrics_widget import MetricsWidget
from napari_unet_loop.widgets.retrain_widget import RetrainWidget
from napari_unet_loop.widgets.segment_widget import SegmentWidget

META = {"unet_loop": {"image_layer": "em", "model": "tiny", "classes": ["bg", "membrane"]}}


def test_panel_docks_with_its_sections_and_the_hint_follows_the_loop(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    _, panel = viewer.window.add_plugin_dock_widget("napari-unet-loop", "U-Net Loop")
    assert panel.hint.text().startswith("Next: Open an image")
    assert isinstance(panel.section(SEGMENT), SegmentWidget)

    viewer.add_image(np.zeros((2, 32, 32), np.uint8), name="em")
    assert panel.step.section == SEGMENT and "Segment" in panel.hint.text()
    assert panel.tabs.tabText(0) == "▸ Segment"

    seg = np.zeros((2, 32, 32), np.uint8)
    seg[:, :, 16:] = 1
    viewer.add_labels(seg, name="em segmentation", metadata=META)
    assert panel.step.section == CORRECT and "Paint" in panel.hint.text()
    session_for(viewer).paint("em segmentation", {0: np.ones((32, 32), bool)})
    assert "Retrain" in panel.hint.text() and "1 corrected slice" in panel.hint.text()

    session_for(viewer).clear_edits("em segmentation")
    viewer.add_labels(seg[:, ::-1].copy(), name="em truth")
    assert panel.step.section == MEASURE and "'em truth'" in panel.hint.text()

    # a real click on a tab builds and shows its widget
    bar = panel.tabs.tabBar()
    for name, kind in ((CORRECT, RetrainWidget), (MEASURE, MetricsWidget), (BATCH, BatchWidget)):
        index = list(panel._factories).index(name)
        qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())
        assert panel.tabs.currentIndex() == index
        assert isinstance(panel.section(name), kind)


def test_panel_fits_a_1080p_screen_beside_the_layer_list(make_napari_viewer):
    viewer = make_napari_viewer()
    _, panel = viewer.window.add_plugin_dock_widget("napari-unet-loop", "U-Net Loop")
    for name in (SEGMENT, CORRECT, MEASURE, BATCH):
        panel.show_section(name)
    hint = panel.minimumSizeHint()
    # a 1080-pixel screen leaves ~950 px for a dock under the title and menu bars
    assert hint.height() < 950 and hint.width() < 600, hint
