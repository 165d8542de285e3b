"""edream: event-streaming platform for demand response, flexibility, VPPs and P2P energy markets."""
