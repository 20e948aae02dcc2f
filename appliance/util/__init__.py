"""Small helpers several packages share."""
