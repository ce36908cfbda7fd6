// What the engine needs from the layers around it: Outlook (the adapter, called only on Outlook's
// main thread through IMainThread) and one collection at the agent.
using System;
using System.Collections.Generic;

namespace OpConnect.Outlook.Sync
{
    /// <summary>Runs work on Outlook's main thread (the object model refuses other threads since Outlook 2013).</summary>
    public interface IMainThread
    {
        /// <summary>Runs `work` on the main thread and returns its result to the calling worker thread.</summary>
        T Invoke<T>(Func<T> work);
    }

    /// <summary>One agent collection bound to one Outlook folder per item family.</summary>
    public class FolderSpec
    {
        /// <summary>Stable key: account + collection href + family (state file, folder property).</summary>
        public string Key;
        public string Account;
        public string Name;
        /// <summary>The folder's default item class: Appointment, Task, Contact (also holds DistList) or Note.</summary>
        public ItemClass Family;
    }

    /// <summary>An item after the adapter wrote it: where it is and what it now reads as.</summary>
    public class Applied
    {
        public string EntryId;
        public DateTime Modified;
        public Dictionary<string, object> Fields;
    }

    /// <summary>A folder scan (Folder.GetTable), read in slices.</summary>
    public interface IFolderScan : IDisposable
    {
        /// <summary>Appends rows until the budget is spent; false once the table is exhausted.</summary>
        bool Next(TimeSpan budget, List<LocalItem> into);
    }

    /// <summary>The Outlook adapter. Every member is called on Outlook's main thread.</summary>
    public interface IOutlookSide
    {
        /// <summary>The folder bound to `spec` (found by its id, then by its binding property, else created).</summary>
        string EnsureFolder(FolderSpec spec, string knownFolderId);
        IFolderScan OpenScan(string folderId);
        /// <summary>The item's normalized field set (property table), or null when it no longer exists.</summary>
        Dictionary<string, object> ReadFields(string entryId);
        /// <summary>Creates (entryId null) or updates an item from an agent item and writes its link; one Save.</summary>
        Applied Write(string folderId, string entryId, RemoteItem remote, Link link);
        /// <summary>Writes the link's named properties (Save); returns the new LastModificationTime.</summary>
        DateTime WriteLink(string entryId, Link link);
        void Delete(string entryId);
        /// <summary>The contact picture as {mime, data (base64)} or null.</summary>
        Dictionary<string, object> ReadPicture(string entryId);
        /// <summary>On the worker thread, once, before the first slice: pays late binding's first-use cost off Outlook's thread.</summary>
        void WarmUp();
        /// <summary>Pure (any thread): an agent field set as this adapter would read it back.</summary>
        Dictionary<string, object> Normalize(ItemClass cls, Dictionary<string, object> fields);
    }

    public class CreateResult
    {
        public string Href;
        public string Uid;
    }

    /// <summary>One collection at the agent (items.* for DAV collections, notes.* for the Notes folder).</summary>
    public interface IRemoteCollection
    {
        RemoteChanges Changes(string cursor);
        RemoteItem Get(string href);
        CreateResult Create(ItemClass cls, Dictionary<string, object> fields, string uid);
        void Patch(string href, string etag, Dictionary<string, object> changes, Dictionary<string, object> whole);
        void Delete(string href, string etag);
        /// <summary>(mime, bytes) or null.</summary>
        Tuple<string, byte[]> Photo(string href);
    }
}
