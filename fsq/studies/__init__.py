"""Write-ups of the studies scripts.reproduce collects: tables and figures from finished runs."""
