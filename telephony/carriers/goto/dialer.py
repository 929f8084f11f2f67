"""GoTo Connect as the calls app's outbound dialer (`calls.carriers.Dialer`)."""

from asgiref.sync import async_to_sync

from calls import carriers
from telephony.carriers.goto.client import GoToConfig, GoToConnectClient, GoToConnectError, dial_string


class GoToDialer:
    """Dials through GoTo Connect's call control, once per call (no retry: never ring a callee twice)."""

    def available(self) -> bool:
        return GoToConfig.from_settings().configured

    def dial(self, request: carriers.DialRequest) -> str:
        config = GoToConfig.from_settings()

        async def dial() -> str:
            client = GoToConnectClient(config)
            try:
                return await client.create_call(dial_string=dial_string(request.to_number), caller_id=request.caller_id)
            finally:
                await client.aclose()

        try:
            return async_to_sync(dial)()
        except GoToConnectError as exc:
            raise carriers.DialRefused(exc.code, str(exc)) from exc

    def hang_up(self, external_call_id: str) -> None:
        async def hang_up() -> None:
            client = GoToConnectClient(GoToConfig.from_settings())
            try:
                await client.hangup(external_call_id)
            finally:
                await client.aclose()

        async_to_sync(hang_up)()
