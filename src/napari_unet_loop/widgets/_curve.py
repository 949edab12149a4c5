"""A small live chart of a Retrain round: training loss and held-back Dice per iteration.

Drawn with QPainter (no plotting dependency). Points arrive with every training iteration;
the chart repaints only when :meth:`CurveChart.refresh` asks, which the Retrain widget does
in the same event-loop turn as its status line and progress bar, a few times a second: under
software OpenGL every repaint of a widget recomposes the whole window, canvas included, on
the cores the round trains on, so repaints that come together cost one recomposition.
"""

from __future__ import annotations

from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPainterPath, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

from ..app.curve import Curve

LOSS_COLOUR, DICE_COLOUR = QColor("#4fa3ff"), QColor("#ffa040")


class CurveChart(QWidget):
    """Shows one :class:`Curve`: loss scaled to its maximum, Dice on 0..1."""

    def __init__(self) -> None:
        super().__init__()
        self.curve = self.live = Curve()
        self.setMinimumHeight(90)
        self.setMaximumHeight(140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._dirty = False
        self.repaints = 0  # how often the chart was asked to repaint (tests check throttling)
        self.setVisible(False)

    def start(self) -> Curve:
        """Show a new, empty curve that :meth:`add` fills (a round begins); returns it."""
        self.live = Curve()
        self.show_curve(self.live)
        return self.live

    def add(self, update) -> None:
        """Record a ``TrainUpdate`` in the live curve; shown at the next :meth:`refresh`."""
        self.live.add(update)
        self._dirty = self.curve is self.live

    def refresh(self) -> None:
        """Repaint if a point arrived since the last repaint."""
        self._repaint()

    def show_curve(self, curve: Curve | None) -> None:
        """Show ``curve`` (a model version's round); None hides the chart."""
        self.curve = curve or Curve()
        self.setVisible(curve is not None)
        self._dirty = True
        self._repaint()

    def _repaint(self) -> None:
        if self._dirty:
            self._dirty = False
            self.repaints += 1
            self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        text = self.palette().windowText().color()
        box = QRectF(self.rect()).adjusted(4, 18, -4, -4)
        painter.setPen(QPen(text, 1))
        painter.drawRect(box)
        curve = self.curve
        loss_max = max((v for _, v in curve.loss), default=1.0) or 1.0
        last = curve.loss[-1][1] if curve.loss else None
        dice = curve.dice[-1][1] if curve.dice else None
        legend = [
            (LOSS_COLOUR, "loss" if last is None else f"loss {last:.3f}"),
            (DICE_COLOUR, "held-back Dice" if dice is None else f"held-back Dice {dice:.3f}"),
        ]
        x = 6.0
        for colour, label in legend:
            painter.setPen(colour)
            painter.drawText(QPointF(x, 13), label)
            x += painter.fontMetrics().horizontalAdvance(label) + 14
        total = max(curve.total, curve.loss[-1][0] if curve.loss else 1, 1)
        for colour, points, top in (
            (LOSS_COLOUR, curve.loss, loss_max),
            (DICE_COLOUR, curve.dice, 1.0),
        ):
            if not points:
                continue
            path = QPainterPath()
            for i, (it, value) in enumerate(points):
                point = QPointF(
                    box.left() + box.width() * it / total,
                    box.bottom() - box.height() * min(max(value / top, 0.0), 1.0),
                )
                path.moveTo(point) if i == 0 else path.lineTo(point)
            painter.setPen(QPen(colour, 1.5, Qt.PenStyle.SolidLine))
            painter.drawPath(path)
        painter.end()
