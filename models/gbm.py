"""LightGBM, imported for its Booster only.

Whenever scikit-learn is installed, `import lightgbm` imports it too (for lightgbm's scikit-learn
estimators, which this project does not use), and scikit-learn pulls in SciPy's statistics: about
0.6 s of every start of the bot and of every backtest. While lightgbm loads, scikit-learn is hidden
from it, so it registers no estimators; training and evaluation import scikit-learn themselves and
find it as usual.
"""
from __future__ import annotations

import sys


def _lightgbm():
    if "lightgbm" in sys.modules or "sklearn" in sys.modules:
        import lightgbm

        return lightgbm
    sys.modules["sklearn"] = None  # makes `import sklearn` fail inside lightgbm.compat only
    try:
        import lightgbm
    finally:
        if sys.modules.get("sklearn", 0) is None:
            del sys.modules["sklearn"]
    return lightgbm


lgb = _lightgbm()
