// The plan, a pure function: (Outlook scan, agent changes, saved state) → actions. No I/O, no clock.
//
//   scan ─┐                         ┌─ push: CreateRemote / PatchRemote / DeleteRemote
//  changes├─▶ Planner.Plan(input) ──┼─ pull: CreateLocal / UpdateLocal / DeleteLocal
//   state ┘                         └─ bookkeeping: LinkLocal / Record / Forget
//
// Rules: a local edit is an edit only when the fields differ from what was last synced (a dismissed
// reminder or our own save bumps LastModificationTime and changes nothing); an item changed on both
// sides is pushed with the etag the add-in was handed, so the agent's conflict machinery decides;
// the add-in never deletes in Outlook what the agent holds, and never pushes a mass deletion.
using System;
using System.Collections.Generic;
using System.Linq;
using OpConnect.Outlook.Ipc;

namespace OpConnect.Outlook.Sync
{
    public class PlanInput
    {
        public List<LocalItem> Scan = new List<LocalItem>();
        public RemoteChanges Changes = new RemoteChanges();
        public FolderState State = new FolderState();
        /// <summary>The property table's normalization of an agent field set (drops defaults and what Outlook cannot hold).</summary>
        public Func<ItemClass, Dictionary<string, object>, Dictionary<string, object>> Normalize = (c, f) => FieldSets.Restrict(f, null);
        /// <summary>The agent holds removals of this collection (calendar.list `held_removals`).</summary>
        public bool Held;
        /// <summary>The collection is read-only at the server: nothing is pushed.</summary>
        public bool ReadOnly;
        public Func<string> NewUid = () => Guid.NewGuid().ToString();
    }

    public static class Planner
    {
        /// <summary>A folder that loses more than this share of its linked items at once is not mirrored to the server.</summary>
        public const double MassDeletionShare = 0.5;
        /// <summary>…unless it is this small (a user tidying a small folder).</summary>
        public const int MassDeletionMinimum = 10;

        /// <summary>The items whose fields must be read before planning: new, modified or rechecked.</summary>
        public static List<string> NeedsFields(List<LocalItem> scan, FolderState state)
        {
            var need = new List<string>();
            foreach (var local in scan)
            {
                Entry entry;
                if (!state.Entries.TryGetValue(local.EntryId, out entry) || entry.Modified != local.Modified || entry.Recheck)
                    need.Add(local.EntryId);
            }
            return need;
        }

        public static Plan Plan(PlanInput input)
        {
            var plan = new Plan();
            var state = input.State;
            var remoteByHref = new Dictionary<string, RemoteItem>();
            foreach (var r in input.Changes.Items) remoteByHref[r.Href] = r;
            var removed = new HashSet<string>(input.Changes.Removed);
            if (input.Changes.Complete)
            {
                // A complete listing: what the state knew and the agent no longer has is gone.
                foreach (var e in state.Entries.Values)
                    if (e.Href != null && !remoteByHref.ContainsKey(e.Href)) removed.Add(e.Href);
            }
            var claimed = new HashSet<string>(); // hrefs that have an Outlook item
            var scanned = new HashSet<string>();

            // Remote items no Outlook item knows yet, by UID: the answer to a create may have been lost.
            var known = new HashSet<string>(state.Entries.Values.Where(e => e.Href != null).Select(e => e.Href));
            foreach (var l in input.Scan) if (l.Link.Href != null) known.Add(l.Link.Href);
            var orphans = input.Changes.Items.Where(r => r.Error == null && !known.Contains(r.Href)).ToList();

            foreach (var local in input.Scan)
            {
                scanned.Add(local.EntryId);
                Entry entry;
                state.Entries.TryGetValue(local.EntryId, out entry);
                string href = entry != null ? entry.Href : local.Link.Href;
                if (href == null)
                {
                    PlanUnlinked(input, plan, local, orphans, claimed);
                    continue;
                }
                claimed.Add(href);
                RemoteItem remote;
                remoteByHref.TryGetValue(href, out remote);
                if (remote != null && remote.Error != null)
                {
                    plan.Notes.Add("the agent cannot read " + href + ": " + remote.Error);
                    remote = null;
                }
                var baseFields = entry != null ? entry.Fields : null;
                bool localChanged = local.Fields != null && (entry != null
                    ? !FieldSets.Same(local.Fields, entry.Fields)
                    : FieldSets.Hash(local.Fields) != local.Link.Hash);
                string etag = entry != null ? entry.Etag : local.Link.Etag;

                if (removed.Contains(href))
                {
                    if (localChanged && !input.ReadOnly)
                    {
                        // Deleted at the server, edited in Outlook: nothing the user wrote is discarded.
                        plan.Actions.Add(new SyncAction { Kind = ActionKind.CreateRemote, EntryId = local.EntryId, Class = local.Class,
                            Fields = local.Fields, Uid = input.NewUid(), Agreed = local.Fields });
                        plan.Notes.Add(href + " was deleted at the server but edited in Outlook: sent again as a new item");
                    }
                    else if (input.Held)
                        plan.Notes.Add(href + ": the agent holds this collection's removals; kept in Outlook");
                    else
                        plan.Actions.Add(new SyncAction { Kind = ActionKind.DeleteLocal, EntryId = local.EntryId, Href = href, Class = local.Class });
                    continue;
                }

                Dictionary<string, object> remoteFields = remote != null ? input.Normalize(remote.Class, remote.Fields) : null;
                bool remoteChanged = remote != null && remote.Etag != etag && (baseFields == null
                    ? !FieldSets.Same(remoteFields, local.Fields ?? remoteFields)
                    : !FieldSets.Same(remoteFields, baseFields));
                if (entry == null && remote == null && !localChanged)
                {
                    // Lost state, item unchanged since its link was written: adopt the link.
                    plan.Actions.Add(Record(local, href, etag, local.Fields));
                    continue;
                }
                if (localChanged && !input.ReadOnly)
                {
                    var patch = FieldSets.Diff(baseFields ?? (remoteFields ?? new Dictionary<string, object>()), local.Fields);
                    // Echo of our own earlier write (same fields, new etag): patch against the newer etag.
                    string patchEtag = remote != null && !remoteChanged ? remote.Etag : etag;
                    if (patchEtag == null)
                    {
                        plan.Notes.Add(href + ": waiting for the agent to confirm its creation before sending an edit");
                        continue;
                    }
                    if (patch.Count == 0) { plan.Actions.Add(Record(local, href, patchEtag, local.Fields)); continue; }
                    plan.Actions.Add(new SyncAction { Kind = ActionKind.PatchRemote, EntryId = local.EntryId, Class = local.Class, Href = href,
                        Etag = patchEtag, Fields = patch, Agreed = local.Fields, Modified = local.Modified, BothChanged = remoteChanged });
                }
                else if (remoteChanged)
                {
                    plan.Actions.Add(new SyncAction { Kind = ActionKind.UpdateLocal, EntryId = local.EntryId, Class = remote.Class, Href = href,
                        Etag = remote.Etag, Remote = remote });
                }
                else if (remote != null || entry == null || entry.Modified != local.Modified || entry.Recheck)
                {
                    // Same fields: a new etag from our own write, or a bumped LastModificationTime.
                    var agreed = local.Fields ?? (entry != null ? entry.Fields : null);
                    plan.Actions.Add(Record(local, href, remote != null ? remote.Etag : etag, agreed));
                }
            }

            PlanLocalDeletions(input, plan, scanned, removed);

            foreach (var r in input.Changes.Items)
            {
                if (r.Error != null || claimed.Contains(r.Href) || known.Contains(r.Href)) continue;
                plan.Actions.Add(new SyncAction { Kind = ActionKind.CreateLocal, Class = r.Class, Href = r.Href, Etag = r.Etag, Remote = r });
                claimed.Add(r.Href);
            }
            return plan;
        }

        static SyncAction Record(LocalItem local, string href, string etag, Dictionary<string, object> fields)
        {
            return new SyncAction { Kind = ActionKind.Record, EntryId = local.EntryId, Class = local.Class, Href = href, Etag = etag,
                Agreed = fields, Modified = local.Modified };
        }

        // An Outlook item never linked: its create may already be at the agent (same UID, or the same
        // fields in an item no Outlook item claims); else it is created there.
        static void PlanUnlinked(PlanInput input, Plan plan, LocalItem local, List<RemoteItem> orphans, HashSet<string> claimed)
        {
            RemoteItem match = null;
            if (local.Link.PendingUid != null)
                match = orphans.FirstOrDefault(r => r.Uid == local.Link.PendingUid && !claimed.Contains(r.Href));
            if (match == null && local.Fields != null)
                match = orphans.FirstOrDefault(r => !claimed.Contains(r.Href) && r.Class == local.Class &&
                    FieldSets.Same(input.Normalize(r.Class, r.Fields), local.Fields));
            if (match != null)
            {
                claimed.Add(match.Href);
                plan.Actions.Add(new SyncAction { Kind = ActionKind.LinkLocal, EntryId = local.EntryId, Class = local.Class, Href = match.Href,
                    Etag = match.Etag, Agreed = input.Normalize(match.Class, match.Fields), Remote = match });
                return;
            }
            if (input.ReadOnly) { plan.Notes.Add(local.EntryId + ": read-only collection, not sent"); return; }
            if (local.Fields == null) return;
            plan.Actions.Add(new SyncAction { Kind = ActionKind.CreateRemote, EntryId = local.EntryId, Class = local.Class,
                Fields = local.Fields, Uid = local.Link.PendingUid ?? input.NewUid(), Agreed = local.Fields });
        }

        static void PlanLocalDeletions(PlanInput input, Plan plan, HashSet<string> scanned, HashSet<string> removed)
        {
            var gone = input.State.Entries.Values.Where(e => !scanned.Contains(e.EntryId)).ToList();
            var linked = input.State.Entries.Count;
            bool mass = gone.Count > MassDeletionMinimum && gone.Count > linked * MassDeletionShare;
            if (mass)
                plan.Notes.Add("Outlook lost " + gone.Count + " of " + linked + " items at once: not deleted at the server (held)");
            foreach (var e in gone)
            {
                if (e.Href == null || removed.Contains(e.Href))
                {
                    plan.Actions.Add(new SyncAction { Kind = ActionKind.Forget, EntryId = e.EntryId, Href = e.Href, Class = e.Class });
                    continue;
                }
                if (mass || input.ReadOnly) continue;
                plan.Actions.Add(new SyncAction { Kind = ActionKind.DeleteRemote, EntryId = e.EntryId, Href = e.Href, Etag = e.Etag, Class = e.Class });
            }
        }
    }
}
