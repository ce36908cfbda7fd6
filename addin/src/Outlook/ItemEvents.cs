// Item events of one folder's Items collection, without the interop assembly: a sink for Outlook's
// ItemsEvents dispinterface, advised through IConnectionPointContainer. Events only trigger a sync;
// ItemAdd is skipped by Outlook for bulk adds and a hard delete fires ItemRemove without the item,
// so the periodic GetTable scan stays the safety net. UNTESTED here (no COM events on Linux).
using System;
using System.Runtime.InteropServices;
using System.Runtime.InteropServices.ComTypes;

namespace OpConnect.Outlook.Outlook
{
    /// <summary>Outlook's ItemsEvents source interface {00063077-0000-0000-C000-000000000046}.</summary>
    [ComImport, Guid("00063077-0000-0000-C000-000000000046"), InterfaceType(ComInterfaceType.InterfaceIsIDispatch)]
    public interface ItemsEventsSource
    {
        [DispId(0xF001)] void ItemAdd([MarshalAs(UnmanagedType.IDispatch)] object item);
        [DispId(0xF002)] void ItemChange([MarshalAs(UnmanagedType.IDispatch)] object item);
        [DispId(0xF003)] void ItemRemove();
    }

    [ComVisible(true), ClassInterface(ClassInterfaceType.None)]
    public sealed class ItemEvents : ItemsEventsSource, IDisposable
    {
        static readonly Guid Source = new Guid("00063077-0000-0000-C000-000000000046");
        // The Items object must stay referenced, or Outlook drops the connection.
        object items;
        readonly Action changed;
        IConnectionPoint point;
        int cookie;

        public ItemEvents(object items, Action changed)
        {
            this.items = items;
            this.changed = changed;
            var container = items as IConnectionPointContainer;
            if (container == null) return; // the stand-in: no COM connection points
            var guid = Source;
            container.FindConnectionPoint(ref guid, out point);
            point.Advise(this, out cookie);
        }

        public void ItemAdd(object item) { Late.Release(item); changed(); }
        public void ItemChange(object item) { Late.Release(item); changed(); }
        public void ItemRemove() { changed(); }

        public void Dispose()
        {
            if (point != null)
            {
                try { point.Unadvise(cookie); } catch (COMException) { }
                Late.Release(point);
                point = null;
            }
            Late.Release(items);
            items = null;
        }
    }
}
