// The sync engine's vocabulary: an Outlook item as scanned, an item as the agent holds it, the link
// between them (saved state, a cache), and the actions a plan is made of.
using System;
using System.Collections.Generic;
using OpConnect.Outlook.Ipc;

namespace OpConnect.Outlook.Sync
{
    /// <summary>Outlook's item classes this add-in syncs (CONTRACT: `class` over IPC).</summary>
    public enum ItemClass { Appointment, Task, Contact, DistList, Note }

    public static class ItemClasses
    {
        public static string Wire(ItemClass c)
        {
            switch (c)
            {
                case ItemClass.Appointment: return "appointment";
                case ItemClass.Task: return "task";
                case ItemClass.Contact: return "contact";
                case ItemClass.DistList: return "distlist";
                default: return "note";
            }
        }

        public static ItemClass? Parse(string wire)
        {
            switch (wire)
            {
                case "appointment": return ItemClass.Appointment;
                case "task": return ItemClass.Task;
                case "contact": return ItemClass.Contact;
                case "distlist": return ItemClass.DistList;
                case "note": return ItemClass.Note;
                default: return null;
            }
        }
    }

    /// <summary>The link stored on the Outlook item itself (named properties): survives a lost state file.</summary>
    public class Link
    {
        public string Href;
        public string Etag;
        /// <summary>Hash of the field set as last synced: tells a real edit from a bumped LastModificationTime.</summary>
        public string Hash;
        /// <summary>The UID sent with a create whose answer may not have arrived.</summary>
        public string PendingUid;
    }

    /// <summary>One Outlook item as a folder scan sees it; Fields only when the planner needs them.</summary>
    public class LocalItem
    {
        public string EntryId;
        public DateTime Modified;
        public ItemClass Class;
        public Link Link = new Link();
        /// <summary>Normalized field set (property table), read only for items that may have changed.</summary>
        public Dictionary<string, object> Fields;
    }

    /// <summary>One item as the agent holds it (items.changes / items.get / notes.list).</summary>
    public class RemoteItem
    {
        public string Href;
        public string Etag;
        public ItemClass Class;
        public Dictionary<string, object> Fields;
        /// <summary>Set when the agent could not read the item (CONTRACT: {href, etag, class, error}).</summary>
        public string Error;
        /// <summary>The contact photo, fetched by the engine before the item is applied (contacts.photo).</summary>
        public byte[] Photo;
        public string PhotoMime;

        public string Uid { get { return Json.Str(Fields, "GlobalUid"); } }
    }

    /// <summary>What changed at the agent since a cursor.</summary>
    public class RemoteChanges
    {
        public List<RemoteItem> Items = new List<RemoteItem>();
        public List<string> Removed = new List<string>();
        public string Cursor;
        /// <summary>True when Items is everything the collection holds (first sync, notes).</summary>
        public bool Complete;
    }

    /// <summary>The saved link of one item (state file; a cache rebuildable from the items' named properties).</summary>
    public class Entry
    {
        public string EntryId;
        public string Href;
        public string Etag;
        public DateTime Modified;
        /// <summary>The normalized field set as last synced (both sides agreed on it).</summary>
        public Dictionary<string, object> Fields;
        /// <summary>Both sides changed: the agent decides; ask it again next round (items.get).</summary>
        public bool Recheck;
        public ItemClass Class;
    }

    /// <summary>Saved state of one Outlook folder bound to one agent collection.</summary>
    public class FolderState
    {
        public string FolderId;
        public Dictionary<string, Entry> Entries = new Dictionary<string, Entry>();

        public Entry ByHref(string href)
        {
            foreach (var e in Entries.Values) if (e.Href == href) return e;
            return null;
        }
    }

    public enum ActionKind
    {
        /// <summary>items.create from an Outlook item (Uid stamped on the item first).</summary>
        CreateRemote,
        /// <summary>items.patch with the changed fields and the etag the add-in was handed.</summary>
        PatchRemote,
        /// <summary>items.delete: the item was deleted in Outlook.</summary>
        DeleteRemote,
        /// <summary>A new Outlook item from an agent item.</summary>
        CreateLocal,
        /// <summary>An agent item's fields written onto its Outlook item.</summary>
        UpdateLocal,
        /// <summary>The agent removed the item: delete it in Outlook.</summary>
        DeleteLocal,
        /// <summary>Link an Outlook item to an agent item (named properties + state).</summary>
        LinkLocal,
        /// <summary>State only: record etag/LastModificationTime/fields (echoes, adoption).</summary>
        Record,
        /// <summary>State only: drop an entry (both sides deleted it).</summary>
        Forget,
    }

    public class SyncAction
    {
        public ActionKind Kind;
        public string EntryId;
        public ItemClass Class;
        public string Href;
        public string Etag;
        public string Uid;
        /// <summary>CreateRemote: the whole field set; PatchRemote: the changed keys (null clears).</summary>
        public Dictionary<string, object> Fields;
        /// <summary>The local fields the action leaves both sides agreeing on (PatchRemote, Record, LinkLocal).</summary>
        public Dictionary<string, object> Agreed;
        public RemoteItem Remote;
        public DateTime Modified;
        /// <summary>PatchRemote of an item changed on both sides: the agent's conflict machinery decides.</summary>
        public bool BothChanged;

        public override string ToString()
        {
            return Kind + " " + (EntryId ?? "") + " " + (Href ?? "");
        }
    }

    public class Plan
    {
        public List<SyncAction> Actions = new List<SyncAction>();
        public List<string> Notes = new List<string>();

        public int Count(ActionKind kind)
        {
            int n = 0;
            foreach (var a in Actions) if (a.Kind == kind) n++;
            return n;
        }
    }
}
