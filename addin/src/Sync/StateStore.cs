// The state file: per collection its cursor, per folder its links. Only a cache: every link is also on
// its Outlook item (named properties), so a lost or damaged file costs a rescan, never a duplicate.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using OpConnect.Outlook.Ipc;

namespace OpConnect.Outlook.Sync
{
    public class CollectionState
    {
        public string Cursor;
        public Dictionary<string, FolderState> Folders = new Dictionary<string, FolderState>();

        public FolderState Folder(string key)
        {
            FolderState f;
            if (!Folders.TryGetValue(key, out f)) Folders[key] = f = new FolderState();
            return f;
        }
    }

    public class StateStore
    {
        readonly string path;
        public Dictionary<string, CollectionState> Collections = new Dictionary<string, CollectionState>();

        /// <param name="path">the file, or null for a state kept in memory only</param>
        public StateStore(string path)
        {
            this.path = path;
            Load();
        }

        public CollectionState Collection(string key)
        {
            CollectionState c;
            if (!Collections.TryGetValue(key, out c)) Collections[key] = c = new CollectionState();
            return c;
        }

        void Load()
        {
            if (path == null || !File.Exists(path)) return;
            try
            {
                var root = Json.ParseObject(File.ReadAllText(path));
                foreach (var kv in Json.Obj(root, "collections") ?? new Dictionary<string, object>())
                {
                    var c = kv.Value as Dictionary<string, object>;
                    var cs = new CollectionState { Cursor = Json.Str(c, "cursor") };
                    foreach (var fkv in Json.Obj(c, "folders") ?? new Dictionary<string, object>())
                    {
                        var f = fkv.Value as Dictionary<string, object>;
                        var fs = new FolderState { FolderId = Json.Str(f, "folder") };
                        foreach (var e in Json.Arr(f, "entries").OfType<Dictionary<string, object>>())
                        {
                            var entry = new Entry
                            {
                                EntryId = Json.Str(e, "id"),
                                Href = Json.Str(e, "href"),
                                Etag = Json.Str(e, "etag"),
                                Modified = new DateTime(Json.Long(e, "modified", 0)),
                                Fields = Json.Obj(e, "fields"),
                                Recheck = Json.Bool(e, "recheck"),
                                Class = ItemClasses.Parse(Json.Str(e, "class")) ?? ItemClass.Appointment,
                            };
                            if (entry.EntryId != null) fs.Entries[entry.EntryId] = entry;
                        }
                        cs.Folders[fkv.Key] = fs;
                    }
                    Collections[kv.Key] = cs;
                }
            }
            catch (Exception)
            {
                // A damaged cache is rebuilt from the items' own links by the next scan.
                Collections.Clear();
            }
        }

        /// <summary>Writes a temp file and moves it over the old one, so a crash leaves one or the other.</summary>
        public void Save()
        {
            if (path == null) return;
            var collections = new Dictionary<string, object>();
            foreach (var kv in Collections)
            {
                var folders = new Dictionary<string, object>();
                foreach (var f in kv.Value.Folders)
                {
                    folders[f.Key] = Json.O("folder", f.Value.FolderId, "entries", f.Value.Entries.Values.Select(e => (object)Json.O(
                        "id", e.EntryId, "href", e.Href, "etag", e.Etag, "modified", e.Modified.Ticks, "fields", e.Fields,
                        "recheck", e.Recheck, "class", ItemClasses.Wire(e.Class))).ToArray());
                }
                collections[kv.Key] = Json.O("cursor", kv.Value.Cursor, "folders", folders);
            }
            var dir = Path.GetDirectoryName(Path.GetFullPath(path));
            Directory.CreateDirectory(dir);
            var tmp = path + ".tmp";
            File.WriteAllText(tmp, Json.Write(Json.O("version", 1, "collections", collections)));
            if (File.Exists(path)) File.Replace(tmp, path, null);
            else File.Move(tmp, path);
        }
    }
}
