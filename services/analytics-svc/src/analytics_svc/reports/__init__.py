"""Reports over the metric read model: trends, breakdowns, leaderboards, SLA compliance, at-risk."""
