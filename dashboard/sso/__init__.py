"""Single sign-on with OpenID Connect: the authentication backend, the login views and the group rules."""
