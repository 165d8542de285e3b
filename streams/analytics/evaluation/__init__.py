"""Honest offline evaluation of forecasters (issue 17): rolling origin, no look-ahead, peers on the same points.

* :mod:`.protocol` - the evaluation horizons, resampling to a horizon's points and the rolling-origin replay;
* :mod:`.metrics` - MAE, MASE (scaled by the horizon's naive), MAPE away from zero, pinball loss, coverage;
* :mod:`.peers` - the reference models: seasonal naive (day, week), persistence, MSTL + ARIMA, LightGBM;
* :mod:`.datasets` - the evaluation sets that ship with installed packages (simbench, pvanalytics);
* :mod:`.report` - every model on every set and horizon, as one JSON object and a markdown table.
"""
