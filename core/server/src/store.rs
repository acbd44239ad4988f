//! The store as the homeserver holds it: whichever backend the config names,
//! behind the one `Store` interface.

use std::future::Future;
use std::io;
use std::pin::Pin;

use tessera_net::runtime::{connect_compat, connect_compat_unix, spawn, CompatTcpStream, CompatUnixStream};
use tessera_storage::embedded::EmbeddedStore;
use tessera_storage::postgres::{PgRuntime, PgStore, PgStream, PgTarget};
use tessera_storage::records::{
    AccessTokenRecord, AccountDataRecord, AliasRecord, DestinationRecord, DeviceKeysRecord, DeviceRecord, EventNid,
    EventRecord, MediaRecord, OneTimeKeyRecord, OutboundRecord, ReceiptRecord, RegistrationTokenRecord, RoomHeadRecord,
    RoomMemberRecord, RoomNid, ServerKeyRecord, StateGroupRecord, StateKeyRecord, StreamPos, ToDeviceRecord,
    UserRecord, UserRoomRecord, VShard,
};
use tessera_storage::{Direction, Op, Result, Store};

/// One shard's handle on the configured backend.
pub enum AnyStore {
    /// fjall in the data directory.
    Embedded(EmbeddedStore),
    /// PostgreSQL.
    Postgres(PgStore),
}

/// The shard runtime, as the PostgreSQL backend needs it.
#[derive(Clone, Copy)]
pub struct ShardRuntime;

impl PgRuntime for ShardRuntime {
    type Stream = PgStream<CompatTcpStream, CompatUnixStream>;

    async fn connect(&self, to: &PgTarget) -> io::Result<Self::Stream> {
        Ok(match to {
            PgTarget::Tcp(addr) => PgStream::Tcp(connect_compat(*addr).await?),
            PgTarget::Unix(path) => PgStream::Unix(connect_compat_unix(path).await?),
        })
    }

    fn spawn(&self, task: Pin<Box<dyn Future<Output = ()>>>) {
        spawn(task);
    }
}

/// Forwards a `Store` call to whichever backend is in use.
macro_rules! forward {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            AnyStore::Embedded(s) => s.$method($($arg),*).await,
            AnyStore::Postgres(s) => s.$method($($arg),*).await,
        }
    };
}

impl Store for AnyStore {
    async fn write(&self, ops: Vec<Op>) -> Result<()> {
        forward!(self.write(ops))
    }

    async fn user(&self, vshard: VShard, user_id: &str) -> Result<Option<UserRecord>> {
        forward!(self.user(vshard, user_id))
    }

    async fn device(&self, vshard: VShard, user_id: &str, device_id: &str) -> Result<Option<DeviceRecord>> {
        forward!(self.device(vshard, user_id, device_id))
    }

    async fn devices(&self, vshard: VShard, user_id: &str) -> Result<Vec<DeviceRecord>> {
        forward!(self.devices(vshard, user_id))
    }

    async fn access_token(&self, digest: &[u8]) -> Result<Option<AccessTokenRecord>> {
        forward!(self.access_token(digest))
    }

    async fn event(&self, event_id: &str) -> Result<Option<EventRecord>> {
        forward!(self.event(event_id))
    }

    async fn timeline(
        &self,
        vshard: VShard,
        room_id: &str,
        from: Option<StreamPos>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<(StreamPos, String)>> {
        forward!(self.timeline(vshard, room_id, from, direction, limit))
    }

    async fn room_head(&self, vshard: VShard, room_id: &str) -> Result<Option<RoomHeadRecord>> {
        forward!(self.room_head(vshard, room_id))
    }

    async fn account_data(
        &self,
        vshard: VShard,
        user_id: &str,
        room_id: Option<&str>,
        data_type: &str,
    ) -> Result<Option<AccountDataRecord>> {
        forward!(self.account_data(vshard, user_id, room_id, data_type))
    }

    async fn all_account_data(&self, vshard: VShard, user_id: &str) -> Result<Vec<AccountDataRecord>> {
        forward!(self.all_account_data(vshard, user_id))
    }

    async fn stream_position(&self, stream: &str) -> Result<Option<StreamPos>> {
        forward!(self.stream_position(stream))
    }

    async fn room_nid(&self, vshard: VShard, room_id: &str) -> Result<Option<RoomNid>> {
        forward!(self.room_nid(vshard, room_id))
    }

    async fn state_keys(&self, room: RoomNid) -> Result<Vec<StateKeyRecord>> {
        forward!(self.state_keys(room))
    }

    async fn event_ids_of(&self, room: RoomNid, nids: &[EventNid]) -> Result<Vec<Option<String>>> {
        forward!(self.event_ids_of(room, nids))
    }

    async fn event_nids_of(&self, room: RoomNid, ids: &[String]) -> Result<Vec<Option<EventNid>>> {
        forward!(self.event_nids_of(room, ids))
    }

    async fn auth_events_of(&self, room: RoomNid, nids: &[EventNid]) -> Result<Vec<Option<Vec<EventNid>>>> {
        forward!(self.auth_events_of(room, nids))
    }

    async fn state_group(&self, room: RoomNid, group: u64) -> Result<Option<StateGroupRecord>> {
        forward!(self.state_group(room, group))
    }

    async fn room_members(
        &self,
        vshard: VShard,
        room_id: &str,
        membership: Option<&str>,
    ) -> Result<Vec<RoomMemberRecord>> {
        forward!(self.room_members(vshard, room_id, membership))
    }

    async fn user_rooms(&self, vshard: VShard, user_id: &str, membership: Option<&str>) -> Result<Vec<UserRoomRecord>> {
        forward!(self.user_rooms(vshard, user_id, membership))
    }

    async fn to_device(
        &self,
        vshard: VShard,
        user_id: &str,
        device_id: &str,
        after: StreamPos,
        limit: usize,
    ) -> Result<Vec<ToDeviceRecord>> {
        forward!(self.to_device(vshard, user_id, device_id, after, limit))
    }

    async fn server_keys(&self, server_name: &str) -> Result<Vec<ServerKeyRecord>> {
        forward!(self.server_keys(server_name))
    }

    async fn destination(&self, destination: &str) -> Result<Option<DestinationRecord>> {
        forward!(self.destination(destination))
    }

    async fn outbound(&self, destination: &str, after: StreamPos, limit: usize) -> Result<Vec<OutboundRecord>> {
        forward!(self.outbound(destination, after, limit))
    }

    async fn media(&self, media_id: &str) -> Result<Option<MediaRecord>> {
        forward!(self.media(media_id))
    }

    async fn alias(&self, alias: &str) -> Result<Option<AliasRecord>> {
        forward!(self.alias(alias))
    }

    async fn registration_token(&self, token: &str) -> Result<Option<RegistrationTokenRecord>> {
        forward!(self.registration_token(token))
    }

    async fn registration_tokens(&self) -> Result<Vec<RegistrationTokenRecord>> {
        forward!(self.registration_tokens())
    }

    async fn room_aliases(&self, room_id: &str) -> Result<Vec<String>> {
        forward!(self.room_aliases(room_id))
    }

    async fn published_rooms(&self) -> Result<Vec<String>> {
        forward!(self.published_rooms())
    }

    async fn device_keys(&self, vshard: VShard, user_id: &str) -> Result<Vec<DeviceKeysRecord>> {
        forward!(self.device_keys(vshard, user_id))
    }

    async fn one_time_key_counts(&self, vshard: VShard, user_id: &str, device_id: &str) -> Result<Vec<(String, u64)>> {
        forward!(self.one_time_key_counts(vshard, user_id, device_id))
    }

    async fn claim_one_time_key(
        &self,
        vshard: VShard,
        user_id: &str,
        device_id: &str,
        algorithm: &str,
    ) -> Result<Option<OneTimeKeyRecord>> {
        forward!(self.claim_one_time_key(vshard, user_id, device_id, algorithm))
    }

    async fn receipts(&self, vshard: VShard, room_id: &str) -> Result<Vec<ReceiptRecord>> {
        forward!(self.receipts(vshard, room_id))
    }
}
