"""The evaluate and latency stages: messages per variant, MATH answers, ALFWorld episodes, Table 3 timing."""
