"""Reading out what frozen features encode: probe protocols by name.

* :class:`LogisticProbe` (``"logistic"``, the default): standardised features, logistic regression fitted to
  convergence, L2 chosen on a validation split carved from the training data, test split touched once; its
  functional core is :mod:`hebbian.probes.logistic`.
* the published protocols (``"softhebb"``, ``"pytorch_hebbian"``, ``"readout"``): a trained copy of the model's
  readout (:class:`~hebbian.trainers.evaluators.LinearProbeEvaluator`);
* ``"krotov_hopfield"``: Krotov & Hopfield's top layer (:class:`KrotovHopfieldProbe`).
"""

from hebbian.probes.logistic import (DEFAULT_L2_GRID, LogisticFit, NonFiniteFeaturesError, Standardizer, fit_logistic,
                                     select_l2, standardize)
from hebbian.probes.probe import LogisticProbe
from hebbian.probes.registry import ProbeInfo, create_probe, get_probe_info, list_probes, register_probe
from hebbian.probes import protocols as _protocols  # noqa: F401  (registers the built-in protocols)
from hebbian.probes.krotov_hopfield import KrotovHopfieldProbe  # registers krotov_hopfield

__all__ = [
    "LogisticProbe", "KrotovHopfieldProbe", "create_probe", "list_probes", "get_probe_info", "register_probe",
    "ProbeInfo", "fit_logistic", "select_l2", "NonFiniteFeaturesError", "standardize", "Standardizer", "LogisticFit",
    "DEFAULT_L2_GRID",
]
