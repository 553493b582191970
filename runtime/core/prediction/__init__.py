"""Predicting how much service a program has left: `gittins_index` over an empirical
size distribution, and `ServicePredictor`, which learns those distributions online from
finished programs, per bucket of program features."""
