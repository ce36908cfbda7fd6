// An in-memory stand-in for classic Outlook's object model: the members the add-in calls, under
// Outlook's own names (Application, NameSpace, Folder, Items, Table, items, PropertyAccessor,
// RecurrencePattern, Recipients, TimeZones), with EntryIDs, LastModificationTime bumped by every
// Save, and Outlook's rule that the object model answers only on its main thread.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;

namespace OpConnect.Outlook.Standin
{
    /// <summary>Outlook refuses object-model calls from other threads (E_RPC_WRONG_THREAD since Outlook 2013).</summary>
    public class WrongThreadException : InvalidOperationException
    {
        public WrongThreadException(string call) : base("E_RPC_WRONG_THREAD: " + call + " called off Outlook's main thread") { }
    }

    public class Application
    {
        public readonly NameSpace Session;
        public readonly TimeZones TimeZones;
        /// <summary>Every object-model call that matters for ordering, in order ("Items.Add(1)", "Save", "GetOccurrence"…).</summary>
        public readonly List<string> Calls = new List<string>();
        /// <summary>When set, calls from any other managed thread throw WrongThreadException.</summary>
        public int? MainThreadId;
        internal readonly Dictionary<string, ItemBase> Items = new Dictionary<string, ItemBase>();
        internal readonly Dictionary<string, Folder> Folders = new Dictionary<string, Folder>();
        long nextId;
        DateTime clock = new DateTime(2026, 12, 1, 8, 0, 0, DateTimeKind.Local);

        /// <param name="machineZone">the Windows zone of the machine Outlook runs on</param>
        public Application(string machineZone = "W. Europe Standard Time")
        {
            TimeZones = new TimeZones(machineZone);
            Session = new NameSpace(this);
        }

        internal void Check(string call)
        {
            if (MainThreadId != null && Thread.CurrentThread.ManagedThreadId != MainThreadId.Value) throw new WrongThreadException(call);
            lock (Calls) Calls.Add(call);
        }

        internal string NewEntryId() { return "0000000038A1BB1005E5101AA1BB08002B2A56C2" + (++nextId).ToString("X8"); }

        /// <summary>Outlook's LastModificationTime has second precision; every save moves it on.</summary>
        internal DateTime Tick() { clock = clock.AddSeconds(1); return clock; }

        public List<ItemBase> AllItems() { return Items.Values.ToList(); }
    }

    public class NameSpace
    {
        readonly Application app;
        readonly Dictionary<int, Folder> defaults = new Dictionary<int, Folder>();

        internal NameSpace(Application app)
        {
            this.app = app;
            foreach (var kv in new Dictionary<int, string> { { 9, "Calendar" }, { 10, "Contacts" }, { 12, "Notes" }, { 13, "Tasks" } })
                defaults[kv.Key] = new Folder(app, kv.Value, kv.Key);
        }

        public Folder GetDefaultFolder(int folderType)
        {
            app.Check("GetDefaultFolder(" + folderType + ")");
            return defaults[folderType];
        }

        public object GetItemFromID(string entryId)
        {
            app.Check("GetItemFromID");
            ItemBase item;
            if (!app.Items.TryGetValue(entryId, out item)) throw new ArgumentException("The operation failed. An object could not be found.");
            return item;
        }

        public Folder GetFolderFromID(string entryId)
        {
            app.Check("GetFolderFromID");
            Folder f;
            if (!app.Folders.TryGetValue(entryId, out f)) throw new ArgumentException("The operation failed. An object could not be found.");
            return f;
        }

        public Recipient CreateRecipient(string name)
        {
            app.Check("CreateRecipient");
            return Recipient.Parse(name);
        }
    }

    public class Folder
    {
        readonly Application app;
        public string Name { get; private set; }
        public string EntryID { get; private set; }
        public int DefaultItemType { get; private set; }
        public readonly Folders Folders;
        public readonly Items Items;
        public readonly PropertyAccessor PropertyAccessor;
        internal readonly List<ItemBase> Contents = new List<ItemBase>();

        internal Folder(Application app, string name, int folderType)
        {
            this.app = app;
            Name = name;
            EntryID = app.NewEntryId();
            // OlFolderType → OlItemType: calendar 9 → 1, contacts 10 → 2, notes 12 → 5, tasks 13 → 3.
            DefaultItemType = folderType == 9 ? 1 : folderType == 10 ? 2 : folderType == 12 ? 5 : 3;
            Folders = new Folders(app, folderType);
            Items = new Items(app, this);
            PropertyAccessor = new PropertyAccessor(app, null);
            app.Folders[EntryID] = this;
        }

        public Table GetTable(string filter, int tableContents)
        {
            app.Check("GetTable");
            return new Table(app, Contents.ToList());
        }
    }

    public class Folders
    {
        readonly Application app;
        readonly List<Folder> list = new List<Folder>();

        internal Folders(Application app, int folderType) { this.app = app; }

        public int Count { get { return list.Count; } }

        /// <summary>1-based, as Outlook's collections.</summary>
        public Folder this[int index] { get { return list[index - 1]; } }

        public Folder Add(string name, int folderType)
        {
            app.Check("Folders.Add");
            if (list.Any(f => f.Name == name)) throw new InvalidOperationException("Cannot create the folder: a folder named " + name + " exists");
            var created = new Folder(app, name, folderType);
            list.Add(created);
            return created;
        }
    }

    public class Items
    {
        readonly Application app;
        readonly Folder folder;

        internal Items(Application app, Folder folder) { this.app = app; this.folder = folder; }

        public int Count { get { return folder.Contents.Count; } }

        public object this[int index] { get { return folder.Contents[index - 1]; } }

        /// <summary>A new unsaved item of OlItemType `type` (appointment 1, contact 2, task 3, note 5, dist list 7).</summary>
        public object Add(int type)
        {
            app.Check("Items.Add(" + type + ")");
            switch (type)
            {
                case 1: return new AppointmentItem(app, folder);
                case 2: return new ContactItem(app, folder);
                case 3: return new TaskItem(app, folder);
                case 5: return new NoteItem(app, folder);
                case 7: return new DistListItem(app, folder);
                default: throw new ArgumentException("item type " + type);
            }
        }
    }

    public class Table
    {
        readonly Application app;
        readonly List<ItemBase> rows;
        int next;
        public readonly Columns Columns = new Columns();

        internal Table(Application app, List<ItemBase> rows) { this.app = app; this.rows = rows; }

        public bool EndOfTable { get { return next >= rows.Count; } }

        public Row GetNextRow()
        {
            app.Check("GetNextRow");
            var item = rows[next++];
            return new Row(Columns.Names.Select(c => item.Column(c)).ToArray());
        }
    }

    public class Columns
    {
        internal readonly List<string> Names = new List<string> { "EntryID", "Subject", "CreationTime", "LastModificationTime", "MessageClass" };
        public void RemoveAll() { Names.Clear(); }
        public void Add(string name) { Names.Add(name); }
    }

    public class Row
    {
        readonly object[] values;
        internal Row(object[] values) { this.values = values; }
        public object[] GetValues() { return (object[])values.Clone(); }
    }

    /// <summary>Named properties by their DASL name; reading one never set raises, as Outlook does.</summary>
    public class PropertyAccessor
    {
        readonly Application app;
        readonly ItemBase item;
        internal readonly Dictionary<string, object> Values = new Dictionary<string, object>();

        internal PropertyAccessor(Application app, ItemBase item) { this.app = app; this.item = item; }

        public object GetProperty(string schemaName)
        {
            object v;
            if (!Values.TryGetValue(schemaName, out v)) throw new ArgumentException("The property \"" + schemaName + "\" is unknown or cannot be found.");
            return v;
        }

        public void SetProperty(string schemaName, object value)
        {
            app.Check("SetProperty");
            Values[schemaName] = value;
            if (item != null) item.Dirty = true;
        }
    }
}
