// The Outlook side of the sync (IOutlookSide): folders per collection, a GetTable scan, items read and
// written through the property table and the special cases, the link kept in named properties.
// The only code (with Special.cs and ItemEvents.cs) that touches Outlook's object model; every member
// runs on Outlook's main thread, called by the engine one slice at a time.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using OpConnect.Outlook.Ipc;
using OpConnect.Outlook.Sync;

namespace OpConnect.Outlook.Outlook
{
    public class OutlookAdapter : IOutlookSide
    {
        /// <summary>PS_PUBLIC_STRINGS: named properties that survive a lost state file (PropertyAccessor, GetTable).</summary>
        public const string Schema = "http://schemas.microsoft.com/mapi/string/{00020329-0000-0000-C000-000000000046}/";
        // "/0x0000001F": an explicitly Unicode string, so that GetTable and PropertyAccessor agree on the type.
        public const string HrefProp = Schema + "opconnect.href/0x0000001F";
        public const string EtagProp = Schema + "opconnect.etag/0x0000001F";
        public const string HashProp = Schema + "opconnect.hash/0x0000001F";
        public const string UidProp = Schema + "opconnect.uid/0x0000001F";
        /// <summary>On a folder: the collection it is bound to (FolderSpec.Key).</summary>
        public const string BindingProp = Schema + "opconnect.collection/0x0000001F";

        // OlDefaultFolders / OlFolderType: calendar 9, contacts 10, notes 12, tasks 13.
        static int FolderType(ItemClass family)
        {
            switch (family)
            {
                case ItemClass.Appointment: return 9;
                case ItemClass.Task: return 13;
                case ItemClass.Note: return 12;
                default: return 10;
            }
        }

        // OlItemType: appointment 1, contact 2, task 3, note 5, distribution list 7.
        static int ItemType(ItemClass cls)
        {
            switch (cls)
            {
                case ItemClass.Appointment: return 1;
                case ItemClass.Contact: return 2;
                case ItemClass.Task: return 3;
                case ItemClass.Note: return 5;
                default: return 7;
            }
        }

        /// <summary>The class of an item by its MessageClass; null for items this add-in does not sync.</summary>
        public static ItemClass? ClassOf(string messageClass)
        {
            if (messageClass == null) return null;
            if (messageClass.StartsWith("IPM.Appointment", StringComparison.OrdinalIgnoreCase)) return ItemClass.Appointment;
            if (messageClass.StartsWith("IPM.Task", StringComparison.OrdinalIgnoreCase)) return ItemClass.Task;
            if (messageClass.StartsWith("IPM.Contact", StringComparison.OrdinalIgnoreCase)) return ItemClass.Contact;
            if (messageClass.StartsWith("IPM.DistList", StringComparison.OrdinalIgnoreCase)) return ItemClass.DistList;
            if (messageClass.StartsWith("IPM.StickyNote", StringComparison.OrdinalIgnoreCase)) return ItemClass.Note;
            return null;
        }

        readonly OutlookContext ctx;
        /// <summary>Called (on the main thread) when a bound folder reports ItemAdd/ItemChange/ItemRemove.</summary>
        public Action<string> ItemEvent;
        readonly Dictionary<string, ItemEvents> sinks = new Dictionary<string, ItemEvents>();
        /// <summary>Attach COM item-event sinks (false for the stand-in, which raises no COM events).</summary>
        public bool AttachEvents = true;

        public OutlookAdapter(object application)
        {
            dynamic app = application;
            ctx = new OutlookContext { Application = app, Session = app.Session };
        }

        public string EnsureFolder(FolderSpec spec, string knownFolderId)
        {
            dynamic session = ctx.Session;
            if (knownFolderId != null)
            {
                try
                {
                    dynamic known = session.GetFolderFromID(knownFolderId);
                    var binding = Binding(known);
                    Late.Release(known);
                    if (binding == spec.Key) { Watch(knownFolderId, session); return knownFolderId; }
                }
                catch (Exception) { } // deleted or moved away: found again by its binding below
            }
            dynamic parent = session.GetDefaultFolder(FolderType(spec.Family));
            dynamic folders = parent.Folders;
            string id = null;
            var names = new HashSet<string>();
            int count = (int)folders.Count;
            for (int i = 1; i <= count && id == null; i++)
            {
                dynamic f = folders[i];
                names.Add((string)f.Name);
                if (Binding(f) == spec.Key) id = (string)f.EntryID;
                Late.Release(f);
            }
            if (id == null)
            {
                var name = names.Contains(spec.Name) ? spec.Name + " (" + spec.Account + ")" : spec.Name;
                dynamic created = folders.Add(name, FolderType(spec.Family));
                dynamic accessor = created.PropertyAccessor;
                accessor.SetProperty(BindingProp, spec.Key);
                Late.Release(accessor);
                id = (string)created.EntryID;
                Late.Release(created);
            }
            Late.Release(folders);
            Late.Release(parent);
            Watch(id, session);
            return id;
        }

        static string Binding(dynamic folder)
        {
            dynamic accessor = folder.PropertyAccessor;
            try { return accessor.GetProperty(BindingProp) as string; }
            catch (Exception) { return null; } // property absent: Outlook raises
            finally { Late.Release(accessor); }
        }

        void Watch(string folderId, dynamic session)
        {
            if (!AttachEvents || sinks.ContainsKey(folderId)) return;
            dynamic folder = session.GetFolderFromID(folderId);
            object items = folder.Items;
            Late.Release(folder);
            sinks[folderId] = new ItemEvents(items, () => { var h = ItemEvent; if (h != null) h(folderId); });
        }

        public void DetachEvents()
        {
            foreach (var s in sinks.Values) s.Dispose();
            sinks.Clear();
        }

        public IFolderScan OpenScan(string folderId)
        {
            dynamic folder = ctx.Session.GetFolderFromID(folderId);
            dynamic table = folder.GetTable("", 0); // olUserItems
            Late.Release(folder);
            dynamic columns = table.Columns;
            columns.RemoveAll();
            foreach (var c in new[] { "EntryID", "LastModificationTime", "MessageClass", HrefProp, EtagProp, HashProp, UidProp }) columns.Add(c);
            Late.Release(columns);
            return new TableScan(table);
        }

        class TableScan : IFolderScan
        {
            dynamic table;

            public TableScan(dynamic table) { this.table = table; }

            public bool Next(TimeSpan budget, List<LocalItem> into)
            {
                var clock = Stopwatch.StartNew();
                while (!(bool)table.EndOfTable)
                {
                    dynamic row = table.GetNextRow();
                    object[] v = row.GetValues();
                    Late.Release(row);
                    var cls = ClassOf(v[2] as string);
                    if (cls != null)
                    {
                        into.Add(new LocalItem
                        {
                            EntryId = (string)v[0],
                            Modified = (DateTime)v[1],
                            Class = cls.Value,
                            Link = new Link { Href = Text(v[3]), Etag = Text(v[4]), Hash = Text(v[5]), PendingUid = Text(v[6]) },
                        });
                    }
                    if (clock.Elapsed > budget) return true;
                }
                return false;
            }

            static string Text(object v)
            {
                var s = v as string;
                return string.IsNullOrEmpty(s) ? null : s;
            }

            public void Dispose()
            {
                Late.Release(table);
                table = null;
            }
        }

        public Dictionary<string, object> ReadFields(string entryId)
        {
            dynamic item = Open(entryId);
            if (item == null) return null;
            try { return Read(item); }
            finally { Late.Release(item); }
        }

        Dictionary<string, object> Read(dynamic item)
        {
            var cls = ClassOf((string)item.MessageClass);
            if (cls == null) return null;
            var fields = new Dictionary<string, object>(StringComparer.Ordinal);
            PropertyTable.Read(item, cls.Value, fields);
            Special.Read(ctx, item, cls.Value, fields);
            return fields;
        }

        dynamic Open(string entryId)
        {
            try { return ctx.Session.GetItemFromID(entryId); }
            catch (Exception) { return null; } // deleted since the scan
        }

        public Applied Write(string folderId, string entryId, RemoteItem remote, Link link)
        {
            dynamic item = null;
            if (entryId != null) item = Open(entryId);
            if (item == null)
            {
                dynamic folder = ctx.Session.GetFolderFromID(folderId);
                dynamic items = folder.Items;
                item = items.Add(ItemType(remote.Class));
                Late.Release(items);
                Late.Release(folder);
            }
            try
            {
                var want = Normalize(remote.Class, remote.Fields);
                var current = entryId != null ? Read(item) : new Dictionary<string, object>();
                PropertyTable.Write(item, remote.Class, want);
                bool exceptionsAfterSave = Special.WriteBeforeSave(ctx, item, remote.Class, want, current, remote);
                SetLink(item, link);
                if (exceptionsAfterSave)
                {
                    item.Save(); // GetOccurrence needs a saved master
                    Special.WriteExceptions(ctx, item, want, Read(item));
                }
                var readBack = Read(item);
                SetLink(item, new Link { Hash = FieldSets.Hash(readBack) });
                item.Save();
                return new Applied { EntryId = (string)item.EntryID, Modified = (DateTime)item.LastModificationTime, Fields = readBack };
            }
            finally { Late.Release(item); }
        }

        static void SetLink(dynamic item, Link link)
        {
            dynamic accessor = item.PropertyAccessor;
            if (link.Href != null) accessor.SetProperty(HrefProp, link.Href);
            if (link.Etag != null) accessor.SetProperty(EtagProp, link.Etag);
            if (link.Hash != null) accessor.SetProperty(HashProp, link.Hash);
            if (link.PendingUid != null) accessor.SetProperty(UidProp, link.PendingUid);
            Late.Release(accessor);
        }

        public DateTime WriteLink(string entryId, Link link)
        {
            dynamic item = Open(entryId);
            if (item == null) return DateTime.MinValue;
            try
            {
                SetLink(item, link);
                item.Save();
                return (DateTime)item.LastModificationTime;
            }
            finally { Late.Release(item); }
        }

        public void Delete(string entryId)
        {
            dynamic item = Open(entryId);
            if (item == null) return;
            try { item.Delete(); }
            finally { Late.Release(item); }
        }

        public Dictionary<string, object> ReadPicture(string entryId)
        {
            dynamic item = Open(entryId);
            if (item == null) return null;
            try { return Special.ReadPicture(item); }
            finally { Late.Release(item); }
        }

        public void WarmUp() { Outlook.WarmUp.Run(); }

        public Dictionary<string, object> Normalize(ItemClass cls, Dictionary<string, object> fields)
        {
            return PropertyTable.NormalizeFields(cls, fields);
        }
    }
}
