"""pytorch-hebbian's API (julestalloen/pytorch-hebbian at 595ec79) on top of :mod:`hebbian`.

Replace ``pytorch_hebbian`` by ``hebbian.compat.pytorch_hebbian`` in the import lines of a pytorch-hebbian script
and it runs on current torch and ignite. The old module layout is kept:

========================  =====================================================================================
module                    names
========================  =====================================================================================
``config``                ``DATASETS_DIR`` (the library's data root), ``OUTPUT_DIR``, ``MODELS_DIR``, ...
``learning_rules``        ``LearningRule`` (``update(inputs, weights)``), ``KrotovsRule``, ``HebbsRule``, ``OjasRule``
``optimizers``            ``Local(named_params, lr)``
``trainers``              ``Trainer``, ``HebbianTrainer``, ``SupervisedTrainer`` (each with ``.engine``)
``evaluators``            ``Evaluator``, ``SimpleEngine``, ``HebbianEvaluator``, ``SupervisedEvaluator``
``handlers``              ``tensorboard_logger`` (six TensorBoard handlers), ``tqdm_logger`` (``TqdmLogger``)
``metrics``               ``UnitConvergence`` (an Ignite ``Metric``)
``nn``                    ``Flatten``, ``RePU``, ``SPELoss``
``utils``                 ``load_weights``, ``get_device``, ``split_dataset``, ``prepare_batch``, ...
========================  =====================================================================================

Where pytorch-hebbian's results were wrong (its conv "patches" were not image patches; its layers were updated in
sequence with one forward pass per layer), the correct behaviour of :mod:`hebbian` is kept and a
:class:`PytorchHebbianCompatWarning` says so, once per process.

Importing this package also lets ``torch.optim.lr_scheduler.ReduceLROnPlateau`` take the ``verbose`` keyword again
(torch removed it; pytorch-hebbian's examples pass it): see :mod:`hebbian.compat.pytorch_hebbian.torch_shims`.
"""

from hebbian.compat.pytorch_hebbian import torch_shims
from hebbian.compat.pytorch_hebbian.compat_warnings import PytorchHebbianCompatWarning

torch_shims.install()

__all__ = ["PytorchHebbianCompatWarning", "torch_shims"]
