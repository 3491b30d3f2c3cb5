"""Reading data: datasets and their splits, sources on disk, rows streamed larger than memory."""
