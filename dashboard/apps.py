from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Vigil dashboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # field__any=[...] (dashboard/db/any_lookup.py): registered here, as the models must not import dashboard.db.
        # Login lockouts (django-axes) go to the audit log.
        from axes.signals import user_locked_out

        from dashboard.db import any_lookup  # noqa: F401
        from dashboard.services.audit import audit_login_lockout

        user_locked_out.connect(audit_login_lockout, dispatch_uid="vigil-audit-login-lockout")
