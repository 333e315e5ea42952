"""Users, companies and OAuth accounts, in the ``auth`` schema."""

from typing import ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.timezones import default_time_zone, time_zone_choices
from portal.db.fields import created_at, updated_at, uuid_pk


class SubscriptionPlan(models.TextChoices):
    FREE = "free", _("Free")
    STARTER = "starter", _("Starter")
    PRO = "pro", _("Pro")
    ENTERPRISE = "enterprise", _("Enterprise")


class Company(models.Model):
    id = uuid_pk(verbose_name=_("ID"))
    name = models.CharField(max_length=255, verbose_name=_("name"))
    domain = models.CharField(max_length=255, blank=True, default="", verbose_name=_("domain"))
    subscription_plan = models.CharField(
        max_length=50,
        choices=SubscriptionPlan,
        default=SubscriptionPlan.FREE,
        db_default="free",
        verbose_name=_("subscription plan"),
    )
    max_users = models.PositiveIntegerField(default=10, db_default=10, verbose_name=_("max users"))
    is_active = models.BooleanField(default=True, db_default=True, verbose_name=_("is active"))
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        db_table = 'auth"."companies'
        verbose_name = _("company")
        verbose_name_plural = _("companies")
        ordering = ["name"]
        indexes = [models.Index(fields=["domain"], name="companies_domain_idx")]

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """The portal's user; email is the login."""

    id = uuid_pk(verbose_name=_("ID"))
    email = models.EmailField(unique=True, verbose_name=_("email"))
    first_name = models.CharField(
        max_length=150, blank=True, default="", verbose_name=_("first name")
    )
    last_name = models.CharField(
        max_length=150, blank=True, default="", verbose_name=_("last name")
    )
    company = models.ForeignKey(
        Company,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="users",
        verbose_name=_("company"),
    )
    department = models.CharField(
        max_length=150, blank=True, default="", verbose_name=_("department")
    )
    subscription_plan = models.CharField(
        max_length=50,
        choices=SubscriptionPlan,
        default=SubscriptionPlan.FREE,
        db_default="free",
        verbose_name=_("subscription plan"),
    )
    keycloak_id = models.CharField(
        _("identity provider id"), max_length=255, unique=True, null=True, blank=True
    )
    is_active = models.BooleanField(default=True, db_default=True, verbose_name=_("is active"))
    is_staff = models.BooleanField(
        _("staff status"), default=False, help_text=_("Can log into the admin portal.")
    )
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        choices=time_zone_choices,
        blank=True,
        default=default_time_zone,
        # Rows written without it (an older release, a raw INSERT) follow the server's
        # zone: an empty value means settings.TIME_ZONE.
        db_default="",
        help_text=_("Every date and time in the portal is shown in this zone."),
    )
    created_at = created_at()
    updated_at = updated_at()

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        db_table = 'auth"."users'
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.email

    def get_short_name(self) -> str:
        return self.first_name or self.email


class OAuthAccount(models.Model):
    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="oauth_accounts", verbose_name=_("user")
    )
    provider = models.CharField(max_length=50, verbose_name=_("provider"))
    provider_account_id = models.CharField(max_length=255, verbose_name=_("provider account id"))
    created_at = created_at()

    class Meta:
        db_table = 'auth"."oauth_accounts'
        verbose_name_plural = _("OAuth accounts")
        verbose_name = _("OAuth account")
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_account_id"], name="oauth_provider_account_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.provider_account_id}"
