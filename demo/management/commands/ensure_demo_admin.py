"""Ensure the demo superuser exists (used by `make run`)."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from demo.guard import refuse_in_production


class Command(BaseCommand):
    help = (
        "Create the demo superuser (PORTAL_ADMIN_EMAIL, default admin@example.com). "
        "The password is PORTAL_ADMIN_PASSWORD when set (also applied to an existing "
        "account), otherwise generated and printed once, at creation."
    )

    def handle(self, *args, **options) -> None:
        refuse_in_production("ensure_demo_admin")
        email = os.environ.get("PORTAL_ADMIN_EMAIL", "admin@example.com").strip().lower()
        password = os.environ.get("PORTAL_ADMIN_PASSWORD", "")
        User = get_user_model()
        if "@" not in email:
            raise CommandError(f"PORTAL_ADMIN_EMAIL is not an email address: {email!r}")
        if password:
            try:
                validate_password(password, User(email=email))
            except ValidationError as exc:
                raise CommandError("PORTAL_ADMIN_PASSWORD: " + " ".join(exc.messages)) from exc

        with transaction.atomic():
            user = User.objects.filter(email=email).first()
            if user is not None:
                if password:
                    user.set_password(password)
                    user.is_staff = user.is_superuser = user.is_active = True
                    user.save()
                    self.stdout.write(
                        f"Demo superuser {email}: password set from PORTAL_ADMIN_PASSWORD."
                    )
                else:
                    self.stdout.write(
                        f"Demo superuser {email} exists; password unchanged "
                        "(set PORTAL_ADMIN_PASSWORD and run again to reset it)."
                    )
                return
            generated = not password
            # 24 random bytes: about 190 bits, far beyond any validator's bar.
            password = password or secrets.token_urlsafe(24)
            User.objects.create_superuser(email=email, password=password)

        self.stdout.write(self.style.SUCCESS(f"Created demo superuser {email}."))
        if generated:
            self.stdout.write(f"  password (shown once): {password}")
