"""MATH-format benchmark records: generated problems (offline default) and hendrycks MATH / local files."""
