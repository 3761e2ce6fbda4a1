"""Custom Ignite events of the Hebbian trainers (registered with ``event_to_attr`` so filters and loggers work)."""

from __future__ import annotations

from ignite.engine import Engine, EventEnum


class HebbianEvents(EventEnum):
    """Events fired by :class:`~hebbian.trainers.HebbianTrainer`.

    * ``LAYER_UPDATED``: after a layer's update was written (before ``optimizer.step()``); ``engine.state.layer_name``
      names the layer; counter ``engine.state.layer_updates``.
    * ``GREEDY_LAYER_COMPLETED``: in greedy layer-wise mode, when a layer's epochs are done and training moves on;
      counter ``engine.state.greedy_layer`` (index of the layer now training).
    """

    LAYER_UPDATED = "layer_updated"
    GREEDY_LAYER_COMPLETED = "greedy_layer_completed"


EVENT_TO_ATTR = {
    HebbianEvents.LAYER_UPDATED: "layer_updates",
    HebbianEvents.GREEDY_LAYER_COMPLETED: "greedy_layer",
}


def register_hebbian_events(engine: Engine) -> None:
    """Register :class:`HebbianEvents` on ``engine`` once, with their counters initialised to 0."""
    if not engine.has_registered_events(HebbianEvents.LAYER_UPDATED):
        engine.register_events(*HebbianEvents, event_to_attr=EVENT_TO_ATTR)
    for attr in EVENT_TO_ATTR.values():
        if not hasattr(engine.state, attr):
            setattr(engine.state, attr, 0)
