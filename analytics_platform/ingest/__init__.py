"""Everything between a visitor's browser and the raw lake: the handler (AWS Lambda or the local
collector) and its sinks."""
