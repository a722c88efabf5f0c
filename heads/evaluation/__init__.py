"""How each built-in head's predictions are collected and scored.

One module per head (``heads.evaluation.<head>``), imported by the head's
:meth:`~heads.base.Head.collector` and :meth:`~heads.base.Head.score` when they are first used:
it needs the ``train`` extra (scikit-learn and matplotlib, through
:mod:`foundation.evaluation`), which the heads themselves do not.
"""
