"""HTTP layer of the gateway: dependencies and one router per protocol."""
