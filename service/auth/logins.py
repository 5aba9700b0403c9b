"""Registration, login, logout and password changes: users, hashes, tokens and throttles."""

from __future__ import annotations

import math
from typing import Any

from service.auth.accounts import ACTIVE, DELETED, Accounts, UserExists
from service.auth.passwords import Passwords, Throttle, password_problem
from service.auth.rules import RuleError, user_rules
from service.auth.tokens import Issued, Tokens
from service.kernel.errors import BadRequest, Conflict, NotFound, TooManyAttempts, Unauthorized
from service.kernel.users import USERNAME, User, valid_username

LOGIN_FAILED = "Invalid username or password"
# Failed logins: per user name (guessing one account's password) and per client address
# (trying many names); a success clears the user's count.
USER_FAILURES, ADDRESS_FAILURES, FAILURE_WINDOW = 5, 20, 15 * 60.0
# Registrations without an admin's token: per client address, counted once the name and
# password are acceptable (each costs a password hash).
REGISTRATIONS, REGISTRATION_WINDOW = 10, 3600.0


class Logins:
    def __init__(self, accounts: Accounts, tokens: Tokens) -> None:
        self.accounts = accounts
        self.tokens = tokens
        self.passwords = Passwords()
        self.by_user = Throttle(USER_FAILURES, FAILURE_WINDOW)
        self.by_address = Throttle(ADDRESS_FAILURES, FAILURE_WINDOW)
        self.registrations = Throttle(REGISTRATIONS, REGISTRATION_WINDOW)

    async def restore(self) -> None:
        """At start-up: revocations and password changes survive restarts."""
        changes = await self.accounts.password_changes()
        self.tokens.restore(
            await self.accounts.revoked(),
            {name: math.floor(changed) for name, changed in changes.items()},
        )
        await self.refresh_blocked()

    async def refresh_blocked(self) -> None:
        """Users disabled or deleted (here, or by the CLI in another process): their tokens
        are refused from now on."""
        self.tokens.block(frozenset(await self.accounts.blocked()))

    async def set_status(self, name: str, status: str) -> None:
        """Disable, enable or delete a user; its tokens follow at once (404 if there is none)."""
        if not valid_username(name) or not await self.accounts.set_status(name, status):
            raise NotFound(f"User {name!r} not found")
        await self.refresh_blocked()

    async def create(
        self,
        name: object,
        password: object,
        *,
        admin: bool = False,
        rules: object = (),
        address: str | None = None,
    ) -> User:
        """A new user; ``rules``: their own endpoint rules (a list of regular expressions);
        ``address``: the client's, for a registration without an admin's token (throttled)."""
        if not valid_username(name):
            raise BadRequest(f"username must match {USERNAME.pattern}")
        assert isinstance(name, str)
        problem = password_problem(password)
        if problem is not None:
            raise BadRequest(problem)
        assert isinstance(password, str)
        try:
            own = user_rules(rules)
        except RuleError as exc:
            raise BadRequest(str(exc)) from None
        if address is not None:
            wait = self.registrations.retry_after(address)
            if wait > 0:
                seconds = math.ceil(wait)
                raise TooManyAttempts(
                    f"Too many registrations from this address; try again in {seconds} s",
                    headers={"Retry-After": str(seconds)},
                )
            self.registrations.failed(address)  # counted whatever comes of it: it costs a hash
        user = User(name, admin=admin, rules=own)
        try:
            await self.accounts.create(user, await self.passwords.hash(password))
        except UserExists as exc:
            taken, status = exc.args
            if status == DELETED:
                raise Conflict(
                    f"User name {taken!r} belonged to a deleted user: it is not given again"
                ) from None
            raise Conflict(f"User {taken!r} exists") from None
        return user

    async def login(self, name: object, password: object, address: str) -> tuple[User, Issued]:
        """A token for the user, or one message for every failure (Unauthorized)."""
        if not isinstance(name, str) or not isinstance(password, str):
            raise BadRequest('Give {"username": "...", "password": "..."}')
        wait = max(self.by_user.retry_after(name), self.by_address.retry_after(address))
        if wait > 0:
            seconds = math.ceil(wait)
            raise TooManyAttempts(
                f"Too many failed logins; try again in {seconds} s",
                headers={"Retry-After": str(seconds)},
            )
        account = await self.accounts.get(name) if valid_username(name) else None
        if account is not None and account.status != ACTIVE:
            account = None  # disabled or deleted: the same answer, at the same cost, as unknown
        stored = account.password_hash if account is not None else None
        if len(password.encode("utf-8", "surrogatepass")) > 1024:
            password = ""  # too long to be anyone's; still costs one verification
        if not await self.passwords.verify(stored, password) or account is None:
            self.by_user.failed(name)
            self.by_address.failed(address)
            raise Unauthorized(LOGIN_FAILED, headers={"WWW-Authenticate": "Bearer"})
        self.by_user.succeeded(name)
        return account.user, self.tokens.issue(account.user)

    async def change_password(self, user: User, current: object, new: object) -> Issued:
        account = await self.accounts.get(user.name)
        if account is None:
            raise Unauthorized(LOGIN_FAILED, headers={"WWW-Authenticate": "Bearer"})
        if not isinstance(current, str) or not await self.passwords.verify(
            account.password_hash, current
        ):
            raise BadRequest("password is not the current password")
        problem = password_problem(new)
        if problem is not None:
            raise BadRequest(f"new_{problem}")
        assert isinstance(new, str)
        changed = await self.accounts.set_password(user.name, await self.passwords.hash(new))
        # Tokens issued before this second stop working; the one returned here does not.
        self.tokens.refuse_issued_before(user.name, math.floor(changed))
        return self.tokens.issue(account.user)

    async def logout(self, jti: str, expires_at: float) -> None:
        self.tokens.revoke(jti, expires_at)
        await self.accounts.revoke(jti, expires_at)


def token_body(issued: Issued) -> dict[str, Any]:
    return {"access_token": issued.token, "token_type": "Bearer", "expires_in": issued.expires_in}
