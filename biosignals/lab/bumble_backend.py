"""A bleak custom backend on Google's Bumble host stack, so the app's own bleak code talks real ATT/GATT to virtual straps.

Use it through bleak's public hooks only::

    BleakScanner(backend=BumbleScanner, bumble_lab=lab)
    BleakClient(address, backend=BumbleClient, bumble_lab=lab)

``bumble_lab`` is a ``biosignals.lab.VirtualLab``: its Bumble central ``Device`` plays the role of the
computer's Bluetooth adapter, on the same in-process ``LocalLink`` as the virtual peripherals. Everything
above this module (scanning, connecting, reading, notifications, disconnect callbacks) is plain bleak.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bleak.args import SizedBuffer
from bleak.assigned_numbers import gatt_char_props_to_strs
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError
from bumble import att, hci
from bumble.core import AdvertisingData
from bumble.device import Advertisement, Connection, Peer

if TYPE_CHECKING:
    from biosignals.lab import VirtualLab

# Bumble's client asks for this ATT MTU on connect, as BlueZ, CoreBluetooth and WinRT do on their own;
# a Polar ECG frame (10 + 73 x 3 bytes) needs at least 232.
REQUESTED_ATT_MTU = 247

_UUID_LIST_TYPES = (
    AdvertisingData.Type.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
)


def _expand(uuid: Any) -> str:
    """A Bumble UUID (16- or 128-bit, stored little-endian) as bleak's lower-case 128-bit string."""
    h = bytes(reversed(uuid.to_bytes(force_128=True))).hex()
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _lab(kwargs: dict[str, Any]) -> VirtualLab:
    lab = kwargs.get("bumble_lab")
    if lab is None:
        raise BleakError("the Bumble backend needs bumble_lab=VirtualLab(...) passed to BleakScanner/BleakClient")
    return lab


class BumbleScanner(BaseBleakScanner):
    """Scans the lab's link with the Bumble central and reports advertisements the way every bleak backend does."""

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._lab = _lab(kwargs)
        self._listener: Callable[[Advertisement], None] | None = None

    async def start(self) -> None:
        self.seen_devices = {}
        central = await self._lab.central()
        self._listener = self._on_advertisement
        central.on(central.EVENT_ADVERTISEMENT, self._listener)
        await self._lab.acquire_scanning()

    async def stop(self) -> None:
        if self._listener is None:
            return
        central = await self._lab.central()
        central.remove_listener(central.EVENT_ADVERTISEMENT, self._listener)
        self._listener = None
        await self._lab.release_scanning()

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        data = advertisement.data
        uuids = list(dict.fromkeys(_expand(u) for t in _UUID_LIST_TYPES for group in data.get_all(t) for u in group))
        if not self.is_allowed_uuid(uuids):
            return
        name = data.get(AdvertisingData.Type.COMPLETE_LOCAL_NAME) or data.get(
            AdvertisingData.Type.SHORTENED_LOCAL_NAME
        )
        manufacturer = {cid: bytes(payload) for cid, payload in data.get_all(AdvertisingData.Type.MANUFACTURER_SPECIFIC_DATA)}
        tx_power = data.get(AdvertisingData.Type.TX_POWER_LEVEL)
        address = str(advertisement.address).split("/")[0]
        adv = AdvertisementData(
            local_name=name,
            manufacturer_data=manufacturer,
            service_data={},
            service_uuids=uuids,
            tx_power=tx_power,
            rssi=self._lab.rssi(address),
            platform_data=(advertisement,),
        )
        device = self.create_or_update_device(address, address, name, advertisement.address, adv)
        self.call_detection_callbacks(device, adv)


class BumbleClient(BaseBleakClient):
    """A GATT client connection made by the lab's Bumble central; bleak's ``BleakClient`` drives it."""

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout)
        self._lab = _lab(kwargs)
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._proxies: dict[int, Any] = {}
        self._subscribers: dict[int, Callable[[bytes], None]] = {}
        self._closing = False

    @property
    def name(self) -> str:
        return self._lab.name_of(self.address) or self.address.replace(":", "-")

    @property
    def mtu_size(self) -> int:
        return self._connection.att_mtu if self._connection is not None else att.ATT_DEFAULT_MTU

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        central = await self._lab.central()
        # Like a real controller, a create-connection waits until the peer advertises, up to the timeout.
        try:
            async with self._lab.connect_lock:
                connection = await central.connect(
                    hci.Address(self.address, hci.Address.RANDOM_DEVICE_ADDRESS), timeout=self._timeout
                )
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise BleakDeviceNotFoundError(self.address, f"Device with address {self.address} was not found") from exc
        self._closing = False
        self._connection = connection
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        peer = Peer(connection)
        self._peer = peer
        try:
            await peer.request_mtu(REQUESTED_ATT_MTU)
            await peer.discover_all()
        except Exception:
            await self.disconnect()
            raise
        self.services = self._service_collection(peer)

    def _service_collection(self, peer: Peer) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        self._proxies = {}
        for service in peer.services:
            bleak_service = BleakGATTService(service, service.handle, _expand(service.uuid))
            collection.add_service(bleak_service)
            for characteristic in service.characteristics:
                self._proxies[characteristic.handle] = characteristic
                bleak_char = BleakGATTCharacteristic(
                    characteristic,
                    characteristic.handle,
                    _expand(characteristic.uuid),
                    list(gatt_char_props_to_strs(int(characteristic.properties))),
                    lambda: self.mtu_size - 3,
                    bleak_service,
                )
                collection.add_characteristic(bleak_char)
                for descriptor in characteristic.descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(descriptor, descriptor.handle, _expand(descriptor.type), bleak_char)
                    )
        return collection

    def _on_disconnection(self, reason: int) -> None:
        unsolicited = not self._closing
        self._connection = None
        self._peer = None
        if unsolicited and self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            return
        self._closing = True
        try:
            await connection.disconnect()
        except Exception:  # noqa: BLE001 - a link already gone is the goal of disconnect()
            pass
        self._connection = None
        self._peer = None

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("virtual straps do not pair")

    async def unpair(self) -> None:
        raise NotImplementedError("virtual straps do not pair")

    def _require_peer(self) -> Peer:
        if self._peer is None:
            raise BleakError("Not connected")
        return self._peer

    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, **kwargs: Any) -> bytearray:
        return await self._read(characteristic.handle)

    async def read_gatt_descriptor(self, descriptor: BleakGATTDescriptor, **kwargs: Any) -> bytearray:
        return await self._read(descriptor.handle)

    async def _read(self, handle: int) -> bytearray:
        try:
            return bytearray(await self._require_peer().read_value(handle))
        except att.ATT_Error as exc:
            raise BleakGATTProtocolError(int(exc.error_code)) from exc

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool) -> None:
        await self._write(characteristic.handle, bytes(data), response)

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: SizedBuffer) -> None:
        await self._write(descriptor.handle, bytes(data), True)

    async def _write(self, handle: int, data: bytes, response: bool) -> None:
        try:
            await self._require_peer().write_value(handle, data, with_response=response)
        except att.ATT_Error as exc:
            raise BleakGATTProtocolError(int(exc.error_code)) from exc

    async def start_notify(self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any) -> None:
        proxy = self._proxies[characteristic.handle]

        def deliver(value: bytes) -> None:
            callback(bytearray(value))

        self._subscribers[characteristic.handle] = deliver
        await self._require_peer().subscribe(proxy, deliver)

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        proxy = self._proxies[characteristic.handle]
        deliver = self._subscribers.pop(characteristic.handle, None)
        await self._require_peer().unsubscribe(proxy, deliver)
