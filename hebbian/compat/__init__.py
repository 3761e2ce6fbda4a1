"""Compatibility layers for code written against earlier Hebbian-learning libraries.

* :mod:`hebbian.compat.pytorch_hebbian`: pytorch-hebbian (Talloen et al., 2020) with its module layout, names,
  keywords and argument orders, mapped onto this package. Old scripts run with only their imports changed from
  ``pytorch_hebbian`` to ``hebbian.compat.pytorch_hebbian``; docs/migrating.md lists every old name, its new
  equivalent and what changes in the results.

Nothing here is imported by :mod:`hebbian` itself.
"""
