//! Who may see a user's online state and last seen: everyone, their friends, or nobody (the user
//! themself always does). Applied wherever presence is shown: `User.isOnline` / `lastSeen`, the
//! chat's online members, and the `presence` subscription, whose rules follow a change of setting,
//! and a friendship that starts or ends, at once (watchers who may no longer see the user get them
//! as offline, with no last seen; watchers who may now see them get their state as it is).
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt, future};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, sea_query::Expr};
use uuid::Uuid;

use super::{
    Viewer, access, friends,
    live::{Friendship, PresenceChange},
};
use crate::{
    entity::user::{self, PresenceVisibility},
    error::{AppError, AppResult},
    events::{Delivered, Event, Topic},
    state::AppState,
};

/// Which of `users` `viewer` may see the presence of (one statement when some show it to
/// friends only).
pub async fn visible(
    db: &impl ConnectionTrait,
    viewer: Uuid,
    users: &[user::Model],
) -> AppResult<Vec<Uuid>> {
    let watch = Watch::of(db, viewer, users).await?;
    Ok(users
        .iter()
        .map(|u| u.id)
        .filter(|&id| watch.sees(id))
        .collect())
}

/// Changes who may see the caller's presence, and tells whoever watches it.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id))]
pub async fn set_visibility(
    app: &AppState,
    viewer: &Viewer,
    visibility: PresenceVisibility,
) -> AppResult<user::Model> {
    let me = user::Entity::update_many()
        .col_expr(user::Column::PresenceVisibility, Expr::value(visibility))
        .filter(user::Column::Id.eq(viewer.user_id))
        .exec_with_returning(&app.db)
        .await?
        .pop()
        .ok_or_else(|| AppError::Unauthenticated("account not found".into()))?;
    let online = app.presence.online(&[me.id]).await.contains(&me.id);
    let event = Event::PresenceChanged {
        user_id: me.id,
        online,
        last_seen: me.last_seen_at,
        visibility: Some(visibility),
    };
    app.bus.publish(Topic::Presence(me.id), event).await;
    Ok(me)
}

/// A `presence` subscription's rules: for each watched user, their setting and whether they are
/// the watcher's friend.
pub struct Watch {
    viewer: Uuid,
    watched: HashMap<Uuid, (PresenceVisibility, bool)>,
}

impl Watch {
    /// The rules for `viewer` watching `users` (one statement when some show their presence to
    /// friends only).
    pub async fn of(
        db: &impl ConnectionTrait,
        viewer: Uuid,
        users: &[user::Model],
    ) -> AppResult<Self> {
        let to_friends: Vec<Uuid> = users
            .iter()
            .filter(|u| u.id != viewer && u.presence_visibility == PresenceVisibility::Friends)
            .map(|u| u.id)
            .collect();
        let friends = friends::among(db, viewer, &to_friends).await?;
        let watched = users
            .iter()
            .map(|u| (u.id, (u.presence_visibility, friends.contains(&u.id))))
            .collect();
        Ok(Self { viewer, watched })
    }

    /// Whether the watcher may see `user` now.
    pub fn sees(&self, user: Uuid) -> bool {
        self.watched
            .get(&user)
            .is_some_and(|&(visibility, friend)| {
                access::sees_presence(self.viewer, user, visibility, friend)
            })
    }

    /// `changes` as this watcher may see them: changes of users they may see pass as they are
    /// (with the bus event, so they render once for every watcher); others are dropped. A change
    /// of setting updates the rules: the user is then shown as they are, or as offline with no
    /// last seen (an item of this watcher's own, without a bus event). So does a friendship
    /// between the watcher and the user that starts or ends, when it changes what the watcher
    /// may see.
    pub fn filter(
        mut self,
        changes: impl Stream<Item = (Arc<Delivered>, PresenceChange)>,
    ) -> impl Stream<Item = (Option<Arc<Delivered>>, PresenceChange)> {
        changes.filter_map(move |(from, change)| {
            if let Some(friendship) = change.friendship {
                return future::ready(self.befriended(change, friendship));
            }
            let Some(visibility) = change.visibility else {
                let seen = self.sees(change.user_id).then_some((Some(from), change));
                return future::ready(seen);
            };
            if let Some(rule) = self.watched.get_mut(&change.user_id) {
                rule.0 = visibility;
            }
            let shown = if self.sees(change.user_id) {
                change
            } else {
                hidden(change.user_id)
            };
            future::ready(Some((None, shown)))
        })
    }

    /// What the watcher is shown when a friendship of `change.user_id` started or ended: nothing
    /// unless it is with the watcher and changes what they may see; then the user as they are
    /// now, or as hidden.
    fn befriended(
        &mut self,
        change: PresenceChange,
        friendship: Friendship,
    ) -> Option<(Option<Arc<Delivered>>, PresenceChange)> {
        if friendship.other != self.viewer {
            return None;
        }
        let before = self.sees(change.user_id);
        self.watched.get_mut(&change.user_id)?.1 = friendship.friends;
        match (before, self.sees(change.user_id)) {
            (false, true) => Some((
                None,
                PresenceChange {
                    friendship: None,
                    ..change
                },
            )),
            (true, false) => Some((None, hidden(change.user_id))),
            _ => None,
        }
    }
}

/// `a` and `b` became friends (`friends`) or stopped being friends: each one's watchers hear of
/// it with their state as it is now, so a presence shown to friends only appears or disappears
/// for the other at once (`Watch::filter`). Called after the change is committed.
pub async fn friendship_changed(app: &AppState, a: Uuid, b: Uuid, friends: bool) {
    let pair = [a, b];
    let online = app.presence.online(&pair).await;
    // Who is offline is shown with their last seen; a friendship that ended shows nothing.
    let last_seen: HashMap<Uuid, Option<DateTime<Utc>>> = if friends {
        match user::Entity::find()
            .filter(user::Column::Id.is_in(pair))
            .all(&app.db)
            .await
        {
            Ok(users) => users.into_iter().map(|u| (u.id, u.last_seen_at)).collect(),
            Err(err) => {
                AppError::from(err).log();
                HashMap::new()
            }
        }
    } else {
        HashMap::new()
    };
    for (user_id, other) in [(a, b), (b, a)] {
        let event = Event::FriendshipChanged {
            user_id,
            other,
            friends,
            online: online.contains(&user_id),
            last_seen: last_seen.get(&user_id).copied().flatten(),
        };
        app.bus.publish(Topic::Presence(user_id), event).await;
    }
}

/// How a user whose presence one may not see is shown.
pub fn hidden(user_id: Uuid) -> PresenceChange {
    PresenceChange {
        user_id,
        online: false,
        last_seen: None::<DateTime<Utc>>,
        visibility: None,
        friendship: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_always_sees_oneself_and_friends_see_what_friends_may() {
        let (me, other) = (Uuid::now_v7(), Uuid::now_v7());
        for visibility in [
            PresenceVisibility::Everyone,
            PresenceVisibility::Friends,
            PresenceVisibility::Nobody,
        ] {
            assert!(access::sees_presence(me, me, visibility, false));
        }
        assert!(access::sees_presence(
            me,
            other,
            PresenceVisibility::Everyone,
            false
        ));
        assert!(access::sees_presence(
            me,
            other,
            PresenceVisibility::Friends,
            true
        ));
        assert!(!access::sees_presence(
            me,
            other,
            PresenceVisibility::Friends,
            false
        ));
        assert!(!access::sees_presence(
            me,
            other,
            PresenceVisibility::Nobody,
            true
        ));
    }
}
