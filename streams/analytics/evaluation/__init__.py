"""Honest offline evaluation of forecasters (issue 17): rolling origin, no look-ahead, peers on the same points.

* :mod:`.protocol` - the evaluation horizons, summing a series into a horizon's points, the rolling-origin replay;
* :mod:`.metrics` - MAE, MASE (scaled by the horizon's naive), MAPE away from zero, pinball loss, coverage;
* :mod:`.peers` - the reference models: seasonal naive (day, week), persistence, MSTL + ARIMA, LightGBM;
* :mod:`.online_models` - the River models and the ensemble, replayed with the calls a stream stage makes;
* :mod:`.run` - every model on one series and each horizon; :mod:`.table` - markdown tables of the figures.

The evaluation sets and the report over all of them are in ``tools/forecast_sets.py`` and
``tools/forecast_report.py``; ``edream forecast evaluate`` runs the harness on a CSV.
"""
