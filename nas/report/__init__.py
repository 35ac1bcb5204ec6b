"""Reports: their data as plain structures, the HTML page drawn from it, and trial exports."""
