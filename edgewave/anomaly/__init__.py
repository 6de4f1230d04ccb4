"""Anomaly scoring from one-step prediction error, independent of the model that made it.

- ``score``: smoothed error energy, calibration on normal data, the normalised score.
- ``baselines``: error signals from classic predictors (LPC residual, moving z-score) to compare with.
- ``evaluate``: ROC-AUC, detection delay and false alarms per hour against per-sample labels.
- ``inject``: synthetic anomalies with exact labels, and reading user label files.
- ``realdata``: a real non-speech recording (PPG from the heartpy package) to try it on.
"""
