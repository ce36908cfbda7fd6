// The sync round, run on a worker thread: ask the agent what changed, scan Outlook in slices on its
// main thread, plan (pure), push to the agent, apply to Outlook in slices, save the state cache.
//
//   worker: changes = items.changes(cursor) ─┐
//   main:   scan = GetTable rows (slices)  ──┼─▶ Planner.Plan ─▶ worker: items.create/patch/delete
//   main:   fields of changed items (slices)─┘                  └▶ main: write items (slices ≤ budget)
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using OpConnect.Outlook.Ipc;

namespace OpConnect.Outlook.Sync
{
    /// <summary>An agent collection as calendar.list / contacts.books / notes describe it.</summary>
    public class CollectionInfo
    {
        public string Account;
        public string Href;
        public string Name;
        public List<ItemClass> Families = new List<ItemClass>();
        public bool ReadOnly;
        public bool Held;
        public IRemoteCollection Remote;

        public string Key { get { return Account + "|" + Href; } }
    }

    public class SyncReport
    {
        public Dictionary<ActionKind, int> Done = new Dictionary<ActionKind, int>();
        public List<string> Notes = new List<string>();
        public TimeSpan LongestSlice;
        /// <summary>What the longest slice did (scan, read, link, pull…).</summary>
        public string LongestSliceWhat;
        /// <summary>The longest slice but the first of each kind in this engine's life, whose late binding
        /// is first used (Outlook's members bound for the first time).</summary>
        public TimeSpan LongestWarmSlice;
        public int Slices;
        public int Collections;

        public int this[ActionKind kind] { get { int n; return Done.TryGetValue(kind, out n) ? n : 0; } }

        internal void Count(ActionKind kind) { Done[kind] = this[kind] + 1; }

        public override string ToString()
        {
            return string.Join(", ", Done.Where(kv => kv.Value > 0).Select(kv => kv.Key + " " + kv.Value)) +
                "; " + Slices + " slices, longest " + LongestSlice.TotalMilliseconds.ToString("0.0") + " ms (" + LongestSliceWhat + "), " + LongestWarmSlice.TotalMilliseconds.ToString("0.0") + " ms once bound";
        }
    }

    public class SyncEngine
    {
        /// <summary>Work per main-thread slice: Outlook stays responsive (UI frames every ~16 ms, freeze felt at
        /// ~100 ms); 10 ms leaves room for the item that straddles the budget and for a busy machine.</summary>
        public TimeSpan SliceBudget = TimeSpan.FromMilliseconds(10);

        readonly IAgent agent;
        readonly IOutlookSide outlook;
        readonly IMainThread main;
        readonly StateStore store;

        public SyncEngine(IAgent agent, IOutlookSide outlook, IMainThread main, StateStore store)
        {
            this.agent = agent;
            this.outlook = outlook;
            this.main = main;
            this.store = store;
        }

        /// <summary>Every collection of every account the agent serves (status, calendar.list, contacts.books, notes).</summary>
        public List<CollectionInfo> Discover()
        {
            var result = new List<CollectionInfo>();
            var status = agent.Call("status", null) as Dictionary<string, object>;
            foreach (var account in Json.Arr(status, "accounts").OfType<Dictionary<string, object>>())
            {
                var name = Json.Str(account, "name");
                var services = Json.Obj(account, "services") ?? new Dictionary<string, object>();
                if (services.ContainsKey("caldav"))
                {
                    foreach (var c in List("calendar.list", name))
                    {
                        var info = new CollectionInfo { Account = name, Href = Json.Str(c, "href"), Name = Json.Str(c, "name"),
                            ReadOnly = Json.Bool(c, "read_only"), Held = Json.Long(c, "held_removals", 0) > 0 };
                        var components = Json.Arr(c, "components").OfType<string>().ToList();
                        if (components.Contains("VEVENT") || (components.Count == 0 && Json.Str(c, "kind") != "tasks")) info.Families.Add(ItemClass.Appointment);
                        if (components.Contains("VTODO") || Json.Str(c, "kind") == "tasks") info.Families.Add(ItemClass.Task);
                        info.Remote = new DavCollection(agent, name, info.Href);
                        result.Add(info);
                    }
                }
                if (services.ContainsKey("carddav"))
                {
                    foreach (var b in List("contacts.books", name))
                    {
                        if (Json.Bool(b, "directory")) continue; // the global address list is searched, not synced
                        var info = new CollectionInfo { Account = name, Href = Json.Str(b, "href"), Name = Json.Str(b, "name"),
                            ReadOnly = Json.Bool(b, "read_only") };
                        info.Families.Add(ItemClass.Contact);
                        info.Remote = new DavCollection(agent, name, info.Href);
                        result.Add(info);
                    }
                }
                if (services.ContainsKey("imap"))
                {
                    var info = new CollectionInfo { Account = name, Href = "notes:", Name = "Notes" };
                    info.Families.Add(ItemClass.Note);
                    info.Remote = new NotesCollection(agent, name);
                    result.Add(info);
                }
            }
            return result;
        }

        List<Dictionary<string, object>> List(string method, string account)
        {
            try
            {
                var answer = agent.Call(method, Json.O("account", account)) as object[];
                return (answer ?? new object[0]).OfType<Dictionary<string, object>>().ToList();
            }
            catch (AgentError e)
            {
                if (e.Code == 2) return new List<Dictionary<string, object>>(); // the server lacks the service
                throw;
            }
        }

        bool warm;
        readonly HashSet<string> sliced = new HashSet<string>();

        public SyncReport SyncAll()
        {
            if (!warm) { outlook.WarmUp(); warm = true; }
            var report = new SyncReport();
            foreach (var c in Discover())
            {
                try { SyncCollection(c, report); }
                catch (AgentError e)
                {
                    // One collection the agent refuses (gone, unsupported) does not stop the others.
                    report.Notes.Add(c.Account + " " + c.Href + ": " + e.Message);
                    if (e.Code == -32601) throw; // an agent without the item model: nothing else will work
                }
            }
            return report;
        }

        public static FolderSpec Spec(CollectionInfo c, ItemClass family)
        {
            return new FolderSpec { Key = c.Key + "|" + ItemClasses.Wire(family), Account = c.Account, Name = c.Name, Family = family };
        }

        static bool InFamily(ItemClass family, ItemClass cls)
        {
            return cls == family || (family == ItemClass.Contact && cls == ItemClass.DistList);
        }

        /// <summary>One collection, every folder it maps to. The cursor advances only once all of them are done.</summary>
        public void SyncCollection(CollectionInfo c, SyncReport report)
        {
            report.Collections++;
            var cstate = store.Collection(c.Key);
            var changes = c.Remote.Changes(cstate.Cursor);
            foreach (var family in c.Families)
            {
                var spec = Spec(c, family);
                var fstate = cstate.Folder(spec.Key);
                string folderId = null;
                Slice("folder", () => { folderId = outlook.EnsureFolder(spec, fstate.FolderId); return false; }, report);
                if (folderId != fstate.FolderId) { fstate.FolderId = folderId; fstate.Entries.Clear(); }
                var mine = new RemoteChanges { Cursor = changes.Cursor, Complete = changes.Complete, Removed = changes.Removed,
                    Items = changes.Items.Where(i => InFamily(family, i.Class)).ToList() };
                // Items changed on both sides: ask the agent what it decided.
                foreach (var e in fstate.Entries.Values.Where(e => e.Recheck && e.Href != null).ToList())
                {
                    if (mine.Items.Any(i => i.Href == e.Href)) continue;
                    var now = c.Remote.Get(e.Href);
                    if (now == null) mine.Removed.Add(e.Href);
                    else if (now.Etag != e.Etag) mine.Items.Add(now);
                    e.Recheck = false;
                }
                SyncFolder(c, folderId, mine, fstate, report);
            }
            cstate.Cursor = changes.Cursor;
            store.Save();
        }

        void SyncFolder(CollectionInfo c, string folderId, RemoteChanges changes, FolderState state, SyncReport report)
        {
            var scan = Scan(folderId, report);
            var need = new HashSet<string>(Planner.NeedsFields(scan, state));
            var toRead = scan.Where(l => need.Contains(l.EntryId)).ToList();
            InSlices("read", toRead, l => { l.Fields = outlook.ReadFields(l.EntryId); }, report);
            scan = scan.Where(l => !need.Contains(l.EntryId) || l.Fields != null).ToList();
            var plan = Planner.Plan(new PlanInput { Scan = scan, Changes = changes, State = state, Normalize = outlook.Normalize,
                Held = c.Held, ReadOnly = c.ReadOnly });
            report.Notes.AddRange(plan.Notes);
            var byId = scan.ToDictionary(l => l.EntryId);

            // Push first (DESIGN: local changes, then pull).
            var creates = plan.Actions.Where(a => a.Kind == ActionKind.CreateRemote).ToList();
            // The UID goes onto the item before the request: a lost answer is recognized next round.
            InSlices("stamp", creates, a => { byId[a.EntryId].Modified = outlook.WriteLink(a.EntryId, new Link { PendingUid = a.Uid }); }, report);
            var links = new List<SyncAction>();
            foreach (var a in plan.Actions)
            {
                switch (a.Kind)
                {
                    case ActionKind.CreateRemote:
                        var created = c.Remote.Create(a.Class, a.Fields, a.Uid);
                        a.Href = created.Href;
                        state.Entries[a.EntryId] = new Entry { EntryId = a.EntryId, Href = created.Href, Class = a.Class,
                            Fields = a.Agreed, Modified = byId[a.EntryId].Modified };
                        links.Add(a);
                        break;
                    case ActionKind.PatchRemote:
                        Patch(c, a, state, report);
                        break;
                    case ActionKind.DeleteRemote:
                        try { c.Remote.Delete(a.Href, a.Etag); }
                        catch (AgentError e) { if (e.Code != 5) throw; }
                        state.Entries.Remove(a.EntryId);
                        break;
                    case ActionKind.Record:
                        state.Entries[a.EntryId] = new Entry { EntryId = a.EntryId, Href = a.Href, Etag = a.Etag, Class = a.Class,
                            Fields = a.Agreed, Modified = a.Modified };
                        break;
                    case ActionKind.Forget:
                        state.Entries.Remove(a.EntryId);
                        break;
                    default:
                        continue;
                }
                report.Count(a.Kind);
            }
            InSlices("link", links, a =>
            {
                var e = state.Entries[a.EntryId];
                e.Modified = outlook.WriteLink(a.EntryId, new Link { Href = a.Href, Hash = FieldSets.Hash(a.Agreed) });
            }, report);

            // Pull: contact pictures are fetched here, on the worker, before the main thread needs them.
            var pulls = plan.Actions.Where(a => a.Kind == ActionKind.CreateLocal || a.Kind == ActionKind.UpdateLocal ||
                a.Kind == ActionKind.DeleteLocal || a.Kind == ActionKind.LinkLocal).ToList();
            foreach (var a in pulls)
            {
                if (a.Remote != null && a.Remote.Class == ItemClass.Contact && Json.Bool(a.Remote.Fields, "HasPicture"))
                {
                    var photo = c.Remote.Photo(a.Href);
                    if (photo != null) { a.Remote.PhotoMime = photo.Item1; a.Remote.Photo = photo.Item2; }
                }
            }
            InSlices("pull", pulls, a => Pull(folderId, a, state), report);
            foreach (var a in pulls) report.Count(a.Kind);
        }

        void Patch(CollectionInfo c, SyncAction a, FolderState state, SyncReport report)
        {
            var changes = a.Fields;
            if (changes.ContainsKey("Members"))
            {
                // The agent's own member list (with members known only by UID) is the base of the merge.
                var now = c.Remote.Get(a.Href);
                changes = new Dictionary<string, object>(changes);
                changes["Members"] = FieldSets.MergeMembers(now != null ? now.Fields : null, changes["Members"] as object[]);
            }
            if (changes.ContainsKey("HasPicture"))
            {
                changes = new Dictionary<string, object>(changes);
                changes.Remove("HasPicture");
                changes["Picture"] = main.Invoke(() => outlook.ReadPicture(a.EntryId));
            }
            try
            {
                c.Remote.Patch(a.Href, a.Etag, changes, a.Agreed);
            }
            catch (AgentError e)
            {
                if (e.Code == 5)
                {
                    // Gone at the agent while edited here: sent again as a new item, nothing lost.
                    state.Entries.Remove(a.EntryId);
                    report.Notes.Add(a.Href + " is gone at the agent; the Outlook item will be sent again");
                    return;
                }
                if (e.Code != 2 && e.Code != 6) throw;
                report.Notes.Add(a.Href + ": " + e.Message);
            }
            state.Entries[a.EntryId] = new Entry { EntryId = a.EntryId, Href = a.Href, Etag = a.Etag, Class = a.Class,
                Fields = a.Agreed, Modified = a.Modified, Recheck = a.BothChanged };
            if (a.BothChanged) report.Notes.Add(a.Href + " changed in Outlook and at the server: the agent's conflict policy decides");
        }

        void Pull(string folderId, SyncAction a, FolderState state)
        {
            switch (a.Kind)
            {
                case ActionKind.DeleteLocal:
                    outlook.Delete(a.EntryId);
                    state.Entries.Remove(a.EntryId);
                    return;
                case ActionKind.LinkLocal:
                    var modified = outlook.WriteLink(a.EntryId, new Link { Href = a.Href, Etag = a.Etag, Hash = FieldSets.Hash(a.Agreed) });
                    state.Entries[a.EntryId] = new Entry { EntryId = a.EntryId, Href = a.Href, Etag = a.Etag, Class = a.Class,
                        Fields = a.Agreed, Modified = modified };
                    return;
                default:
                    var applied = outlook.Write(folderId, a.Kind == ActionKind.UpdateLocal ? a.EntryId : null, a.Remote,
                        new Link { Href = a.Href, Etag = a.Etag });
                    if (applied == null) return;
                    if (a.EntryId != null && applied.EntryId != a.EntryId) state.Entries.Remove(a.EntryId);
                    state.Entries[applied.EntryId] = new Entry { EntryId = applied.EntryId, Href = a.Href, Etag = a.Etag,
                        Class = a.Remote.Class, Fields = applied.Fields, Modified = applied.Modified };
                    return;
            }
        }

        List<LocalItem> Scan(string folderId, SyncReport report)
        {
            var rows = new List<LocalItem>();
            IFolderScan scan = null;
            Slice("open scan", () => { scan = outlook.OpenScan(folderId); return false; }, report);
            try
            {
                while (Slice("scan", () => scan.Next(SliceBudget, rows), report)) { }
            }
            finally
            {
                Slice("close scan", () => { scan.Dispose(); return false; }, report);
            }
            return rows;
        }

        /// <summary>Runs `work` for each element on the main thread, as many per slice as fit the budget.</summary>
        void InSlices<T>(string what, List<T> items, Action<T> work, SyncReport report)
        {
            int next = 0;
            while (next < items.Count)
            {
                Slice(what, () =>
                {
                    var clock = Stopwatch.StartNew();
                    do { work(items[next++]); } while (next < items.Count && clock.Elapsed < SliceBudget);
                    return false;
                }, report);
            }
        }

        bool Slice(string what, Func<bool> work, SyncReport report)
        {
            return main.Invoke(() =>
            {
                var clock = Stopwatch.StartNew();
                try { return work(); }
                finally
                {
                    clock.Stop();
                    report.Slices++;
                    if (clock.Elapsed > report.LongestSlice) { report.LongestSlice = clock.Elapsed; report.LongestSliceWhat = what; }
                    if (!sliced.Add(what) && clock.Elapsed > report.LongestWarmSlice) report.LongestWarmSlice = clock.Elapsed;
                }
            });
        }
    }
}
