"""Statistical customer intelligence: the BG/NBD purchase model, the Gamma-Gamma spend
model and customer lifetime value, on numpy and scipy.

    from linkbay_customers_clv import BetaGeoModel, GammaGammaModel, customer_lifetime_value

    bg = BetaGeoModel.fit(frequency, recency, T)
    churn_risk = bg.probability_no_purchase(90, frequency, recency, T)
    repeat = frequency > 0
    gg = GammaGammaModel.fit(frequency[repeat], monetary_value[repeat])
    clv = customer_lifetime_value(
        bg, gg, frequency, recency, T, monetary_value, months=12, discount_rate=0.01
    )
"""

from __future__ import annotations

try:
    import numpy  # noqa: F401
    import scipy  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "linkbay_customers_clv needs numpy and scipy: pip install 'linkbay-customers[clv]'"
    ) from exc

from linkbay_customers_clv._beta_geo import BetaGeoModel
from linkbay_customers_clv._checks import MIN_CUSTOMERS
from linkbay_customers_clv._errors import ConvergenceError
from linkbay_customers_clv._fit_storage import ModelFitStorage
from linkbay_customers_clv._gamma_gamma import GammaGammaModel
from linkbay_customers_clv._intelligence import MODEL_NAME, BetaGeoIntelligence, FitOutcome
from linkbay_customers_clv._lifetime_value import customer_lifetime_value

__all__ = (
    "MIN_CUSTOMERS",
    "MODEL_NAME",
    "BetaGeoIntelligence",
    "BetaGeoModel",
    "ConvergenceError",
    "FitOutcome",
    "GammaGammaModel",
    "ModelFitStorage",
    "customer_lifetime_value",
)
