"""Predicting how much service a program has left: `gittins_index` over an empirical
size distribution, and size predictors (`registry.PREDICTORS`: a log-linear regression,
feature buckets) that learn those distributions online from finished programs."""
